"""A chain's run as LangChain's own event stream (``astream_events`` v2, or ``astream_log``'s
patches), produced on the run's worker thread like any other run.

Why this shape: :class:`~service.runs.stream.ChainRun` iterates ``runnable.stream`` on a
worker thread — the Workers cap, backpressure, and closing botocore's stream when the client
goes away all live there. LangChain makes its events only through its async API, so
:class:`EventStream` is a runnable whose ``stream`` drives that API on a private event loop
inside the calling thread, one item per step. The server's event loop never runs a chain, the
text path is not touched, and a cancelled run stops as any other run does. The events are
LangChain's, not made up from the text: ``on_chain_start``, ``on_prompt_end``,
``on_chat_model_stream`` with each ``AIMessageChunk`` …

- **Inline executor.** langchain-aws reads botocore's stream through ``run_in_executor``; the
  private loop's executor runs that read right here, on the worker thread. So a run is one
  thread, as the cap counts; botocore's stream is closed by the thread that reads it, never
  under a blocked read (what ``ChainRun.cancel`` relies on); and no thread hop per chunk
  (measured: ~270 µs of CPU per token for events, ~450 µs with LangChain's default thread
  pool). Blocking that loop blocks nobody: it serves this run alone.
- **One context.** Every step runs in one ``contextvars.Context``, copied from the worker's:
  what LangChain sets in context variables during the stream survives between steps, and the
  list :func:`~service.chains.models.opened_streams` collects is the worker's (LangChain
  copies contexts into its tasks and executor calls; the list is shared, not copied).
- **Held until the first token.** Items are held back until the model has produced text (or
  the run ended), so a failure before it — a throttled or refused model call — is raised from
  the first step and still gets a real HTTP status, as a text stream's does.
"""

import asyncio
import concurrent.futures
import contextlib
import contextvars
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any, Literal, ParamSpec, TypeVar

from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.runnables import Runnable, RunnableConfig

from service.chains.models import is_output

P = ParamSpec("P")
T = TypeVar("T")
Kind = Literal["events", "log"]

# astream_log is deprecated in LangChain (2.0 removes it) but is what LangServe clients call
# (RemoteRunnable.astream_log); the warning speaks to us, never to them, so it is not printed.
warnings.filterwarnings(
    "ignore", message="astream_log is deprecated", category=LangChainDeprecationWarning
)


class EventStream(Runnable[dict[str, Any], str]):
    """``runnable`` seen through LangChain's event stream: :meth:`stream` yields one run's
    events (``kind="events"``: ``astream_events`` v2) or patches (``"log"``: ``astream_log``
    with ``diff=True``), each turned into text by ``encode`` on the worker thread — at once,
    before LangChain goes on and may change objects an event refers to.

    ``filters`` are LangChain's ``include_names`` … ``exclude_tags``.
    """

    def __init__(
        self,
        runnable: Runnable[dict[str, Any], str],
        kind: Kind,
        filters: dict[str, list[str] | None],
        encode: Callable[[Any], str],
    ) -> None:
        self.runnable = runnable
        self.kind = kind
        self.filters = filters
        self.encode = encode

    def invoke(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> str:
        raise NotImplementedError("an event stream is streamed: call stream()")

    def stream(
        self, input: dict[str, Any], config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[str]:
        first = _FirstText()
        config = config or {}
        callbacks = config.get("callbacks") or []
        assert isinstance(callbacks, list), "ChainRun passes its callbacks as a list"
        config = {**config, "callbacks": [*callbacks, first]}
        held: list[str] | None = []
        # Closed with this generator, at once: its loop and the run's tasks with it.
        with contextlib.closing(_on_this_thread(self._events(input, config))) as items:
            for item in items:
                text = self.encode(item)
                if held is None:
                    yield text
                elif first.seen:
                    yield from held
                    held = None
                    yield text
                else:
                    held.append(text)
        yield from held or ()

    def _events(self, input: dict[str, Any], config: RunnableConfig) -> AsyncIterator[Any]:
        filters: Any = self.filters
        if self.kind == "log":
            return self.runnable.astream_log(input, config, diff=True, **filters)
        return self.runnable.astream_events(input, config, version="v2", **filters)


class _FirstText(BaseCallbackHandler):
    """Notes the model's first output (``models.is_output``): a stream's first chunk."""

    run_inline = True  # a flag to set: no executor call for it

    def __init__(self) -> None:
        self.seen = False

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        **kwargs: Any,
    ) -> None:
        if chunk is None:
            self.seen = self.seen or bool(token)
        elif isinstance(chunk, ChatGenerationChunk):
            self.seen = self.seen or is_output(chunk.message)  # text, or a tool's arguments
        else:
            self.seen = self.seen or bool(chunk.text)


class _Inline(concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each call at once, on the calling thread (it starts none)."""

    def submit(  # type: ignore[override]
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


_DONE: Any = object()


def _on_this_thread(items: AsyncIterator[T]) -> Generator[T, None, None]:
    """The items of ``items``, driven step by step on a private event loop in this thread
    (see the module's notes)."""
    loop = asyncio.new_event_loop()
    loop.set_default_executor(_Inline(max_workers=1))
    context = contextvars.copy_context()  # here, in the run's context (opened_streams' list)

    def run(step: Coroutine[Any, Any, Any]) -> Any:
        return loop.run_until_complete(loop.create_task(step, context=context))

    async def next_item() -> Any:
        return await anext(items, _DONE)

    async def close() -> None:
        aclose = getattr(items, "aclose", None)
        if aclose is not None:
            await aclose()

    try:
        while (item := run(next_item())) is not _DONE:
            yield item
    finally:
        try:
            # The run is over (or nobody listens any more): what it says on the way out
            # reaches no one, and must not turn a finished run into a failed one.
            with contextlib.suppress(Exception):
                run(close())
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
