"""Deploying to AWS Lambda: ``package`` builds the zip (standard library only: ``sam build``
runs it with a bare Python)."""
