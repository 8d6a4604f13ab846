"""LangSmith tracing: best-effort, never in a request's way, never holding a stopping server.

Tracing itself needs no code: with ``LANGSMITH_TRACING=true`` (plus ``LANGSMITH_API_KEY`` and,
for a self-hosted LangSmith, ``LANGSMITH_ENDPOINT``) langchain-core attaches LangSmith's tracer
to every run, on our worker threads too, and the langsmith client sends the runs from its own
background thread through a bounded queue (``LANGSMITH_TRACING_QUEUE_MAX_SIZE``; when it is
full, runs are dropped, not waited for). So an outage never slows or fails a request.

What it does need is this: langsmith's sender threads are not daemons unless
``LANGSMITH_USE_DAEMON=true``, and with the endpoint down, interpreter shutdown waits for them
to work through timeouts and retries (measured: minutes). :func:`prepare` therefore defaults
that variable to ``true`` (before the client that reads it exists; a user's own value wins)
and, so that a healthy endpoint still gets the last runs, flushes at exit for at most
:data:`EXIT_FLUSH_SECONDS`.
"""

import atexit
import logging
import os
from collections.abc import MutableMapping

EXIT_FLUSH_SECONDS = 2.0
"""How long a stopping process waits for queued runs to reach LangSmith."""

_TRUE = ("true", "1", "yes")
# langsmith's names for "tracing on", newest first (it reads each, with the LANGCHAIN_ prefix too).
_SWITCHES = (
    "LANGSMITH_TRACING",
    "LANGSMITH_TRACING_V2",
    "LANGCHAIN_TRACING_V2",
    "LANGCHAIN_TRACING",
)
_prepared = False


def tracing_on(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the environment turns LangSmith tracing on."""
    env = os.environ if environ is None else environ
    return any(env.get(name, "").strip().lower() in _TRUE for name in _SWITCHES)


def prepare(environ: MutableMapping[str, str] | None = None) -> None:
    """At start-up, before any run: daemon sender threads and a bounded flush at exit.

    Does nothing unless tracing is on. Runs once per process (``create_app`` may run more).
    """
    global _prepared
    env = os.environ if environ is None else environ
    if _prepared or not tracing_on(env):
        return
    _prepared = True
    if "LANGSMITH_USE_DAEMON" not in env and "LANGCHAIN_USE_DAEMON" not in env:
        env["LANGSMITH_USE_DAEMON"] = "true"
    # atexit handlers run after the interpreter has joined its non-daemon threads and before
    # it drops the daemon ones: the moment to give queued runs a bounded last chance.
    atexit.register(flush, EXIT_FLUSH_SECONDS)


def flush(timeout: float) -> None:
    """Send the queued runs, waiting at most ``timeout`` seconds; never raises."""
    from langsmith import run_trees  # already imported by langchain-core

    client = run_trees._CLIENT  # the cached client langchain-core's tracer sends with
    if client is None:  # no run was traced
        return
    try:
        client.flush(timeout=timeout)
    except Exception:  # best-effort: a failed last send must not fail the exit
        logging.getLogger("chainserve").warning("LangSmith: runs not sent at exit", exc_info=True)
