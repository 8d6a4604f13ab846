"""What clients speak: ``routes`` (the HTTP API, LangServe's bodies), ``wire`` (each streamed
format, one encoder over the same run), ``openapi`` (the document, per chain)."""
