"""Benchmarks: what chainserve adds between Bedrock and the client, beside LangServe and the floor.

``python -m bench`` (or ``make bench``) runs every figure and prints a table; see
``docs/performance.md`` for the method and the last recorded run.
"""
