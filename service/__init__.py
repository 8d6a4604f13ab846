"""chainserve: LangChain chains defined in YAML files, served as streaming HTTP endpoints.

The data path, one module each: chain file (``loader``) → spec (``spec``) → runnable
(``runnable``) → stream (``stream``) → wire (``wire``), behind the HTTP routes (``routes``)
of the app built by ``app.create_app``.
"""

__version__ = "0.1.0"
