"""Running a chain: the synchronous LangChain stream on a worker thread, handed to the loop.

Why a thread: langchain-aws streams through boto3, which is synchronous. Iterating it on the
event loop would block every other request, and ``astream`` hops threads once per chunk: here,
``astream`` costs about 350 µs of CPU per chunk against 65 µs for ``stream``. So each run
iterates ``stream`` on its own worker thread and passes chunks to the loop through a deque,
waking the loop only when it is waiting — chunks that arrive while it is busy go together.

Bursts: each wake is a thread switch, which costs more than the chunk itself. When chunks
come less than ``BURST_SECONDS`` apart, the loop waits that long before taking the next ones,
so a burst is written in a few writes instead of one per chunk (at most 1 ms later; a model
streaming at a normal pace, tens of milliseconds a token, never triggers it).

Stopping: :meth:`ChainRun.cancel` (the client went away) makes the worker, at its next chunk,
close botocore's event stream and with it the HTTP connection to Bedrock, so no further token
is read.
"""

import asyncio
import contextlib
import contextvars
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from langchain_core.runnables import Runnable

from service.chains.models import opened_streams
from service.runs import errors
from service.runs.info import RunInfo

T = TypeVar("T")
_Job = tuple[Callable[[], Any], int, "asyncio.Future[Any]"]
MAX_BUFFERED_CHUNKS = 256  # per run, between the worker and the event loop
BURST_SECONDS = 0.001  # chunks closer than this are gathered for this long


class _End:
    """Marks the end of a run's chunks; ``error`` is set if it failed."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class Workers:
    """The threads chain runs execute on, with a hard cap: past it, 503 instead of a queue.

    One thread per run at a time. A thread that finishes a run waits ``idle_seconds`` for the
    next before it exits, so a busy server does not start a thread per request (starting one
    holds the event loop for about a millisecond). Daemon threads, not a pool's: a pool's
    threads are joined when the process exits, so a run stalled on Bedrock would hold a
    shutting-down server for up to the read timeout.
    """

    def __init__(self, max_workers: int, retry_after: int, idle_seconds: float = 30.0) -> None:
        self._max = max_workers
        self._retry_after = retry_after
        self._idle_seconds = idle_seconds
        self._active = 0
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[_Job]] = []  # the inboxes of waiting threads
        self._runs: weakref.WeakSet[ChainRun] = weakref.WeakSet()

    @property
    def active(self) -> int:
        return self._active

    @property
    def threads(self) -> int:
        """Threads waiting for a run (the running ones are ``active``, at most)."""
        return len(self._idle)

    def run(self, function: Callable[[], T]) -> "asyncio.Future[T]":
        """Run ``function`` on a worker thread, holding one slot of the cap; raises 503 when
        none is free."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        _, inbox = self._reserve(1, 1)
        self._dispatch((function, 1, future), inbox)
        return future

    def run_up_to(self, function: Callable[[int], T], slots: int) -> "asyncio.Future[T]":
        """Run ``function(granted)`` on a worker thread, holding ``granted`` slots: as many of
        ``slots`` as are free (a batch holds one per model call it makes at once, and makes
        no more than it was granted). Raises 503 only when no slot at all is free."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        granted, inbox = self._reserve(slots, 1)
        self._dispatch((lambda: function(granted), granted, future), inbox)
        return future

    def _reserve(self, slots: int, least: int) -> "tuple[int, queue.SimpleQueue[_Job] | None]":
        with self._lock:
            granted = min(slots, self._max - self._active)
            if granted < least:
                raise errors.ApiError(
                    503,
                    f"server busy: {self._active} of {self._max} chain runs in progress; "
                    "retry shortly",
                    code="busy",
                    headers={"Retry-After": str(self._retry_after)},
                )
            self._active += granted
            return granted, (self._idle.pop() if self._idle else None)

    def _dispatch(self, job: _Job, inbox: "queue.SimpleQueue[_Job] | None") -> None:
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(inbox,), name="chain", daemon=True).start()
        inbox.put(job)

    def _serve(self, inbox: "queue.SimpleQueue[_Job]") -> None:
        while True:
            try:
                job = inbox.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                job = inbox.get()  # taken just as the wait ended: its run is on the way
            self._execute(job)
            del job  # the finished run is not kept alive while this thread waits
            with self._lock:
                self._idle.append(inbox)

    def _execute(self, job: "_Job") -> None:
        # A fresh context per run, as a new thread would have: nothing a run set in a context
        # variable reaches the next run on this thread.
        function, slots, future = job
        contextvars.Context().run(self._counted, function, slots, future)

    def _counted(
        self, function: Callable[[], Any], slots: int, future: "asyncio.Future[Any]"
    ) -> None:
        try:
            outcome: tuple[Callable[[Any], None], Any] = (future.set_result, function())
        except BaseException as exc:
            outcome = (future.set_exception, exc)
        finally:
            with self._lock:
                self._active -= slots
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits for it
            future.get_loop().call_soon_threadsafe(_settle, future, *outcome)

    def track(self, run: "ChainRun") -> None:
        self._runs.add(run)

    def shutdown(self) -> None:
        """Ask every run to stop. (A run's Bedrock stream is only ever closed by its own
        thread: closing it from here would wait on that thread's blocked read.)"""
        for run in list(self._runs):
            run.cancel()


class ChainRun:
    """One streaming run of a chain: produced on a worker thread, consumed on the loop.

    The items are what ``runnable.stream`` yields: a chain's text chunks, or, for an
    :class:`~service.runs.events.EventStream`, its LangChain events as JSON text.
    """

    def __init__(
        self,
        runnable: Runnable[dict[str, Any], str],
        variables: dict[str, Any],
        config: dict[str, Any],
    ) -> None:
        self.info = RunInfo()
        self._runnable = runnable
        self._variables = variables
        self._config = self.info.config(config)
        self._items: deque[str | _End] = deque()
        self._lock = threading.Lock()
        self._taken = threading.Condition(self._lock)  # the loop took chunks: room again
        self._waiter: asyncio.Future[None] | None = None
        self._cancelled = False
        self._finished = False
        self._error: BaseException | None = None
        self._loop = asyncio.get_running_loop()
        self._last_taken = 0.0
        self._bursting = False

    async def start(self, workers: Workers) -> list[str]:
        """Start the run and wait for its first chunks (empty: it finished with no output).

        A failure before any output is raised here, so the caller can still send a status.
        """
        workers.run(self._produce)
        workers.track(self)
        while True:
            chunks = self._take(await self._next_batch())
            if chunks:
                self.info.first_output = time.perf_counter()
                return chunks
            if self._finished:
                self._raise_error()
                return []

    async def rest(self) -> AsyncIterator[list[str]]:
        """The chunks after :meth:`start`'s, in lists of all that arrived since the last.

        A failure after the first chunk is raised once the chunks before it are delivered.
        Leaving early (the client went away) cancels the run.
        """
        try:
            while not self._finished:
                chunks = self._take(await self._next_batch())
                if chunks:
                    yield chunks
            self._raise_error()
        finally:
            self.cancel()

    def cancel(self) -> None:
        """Stop reading from the model at its next chunk (the worker closes the stream)."""
        with self._lock:
            self._cancelled = True
            self._taken.notify()

    # -- worker thread ------------------------------------------------------------------------

    def _produce(self) -> None:
        error: BaseException | None = None
        try:
            with opened_streams() as upstream:
                stream: Any = self._runnable.stream(self._variables, self._config)  # type: ignore[arg-type]
                try:
                    for chunk in stream:
                        if self._cancelled:
                            if not upstream:
                                break
                            # Stop Bedrock now. The chain's generators then end on their own
                            # (closing them early would make LangChain drain the model stream).
                            _close_quietly(upstream)
                        elif chunk:
                            self._push(chunk)
                finally:
                    stream.close()
        except BaseException as exc:
            if not self._cancelled:  # a run cut short may fail on the way out; nobody listens
                error = exc
        finally:
            self._push(_End(error))

    def _push(self, item: str | _End) -> None:
        with self._lock:
            # Backpressure: while the client does not read, neither do we. The model stream
            # waits in botocore's socket instead of piling up here.
            while len(self._items) >= MAX_BUFFERED_CHUNKS and not self._cancelled:
                self._taken.wait()
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            try:
                self._loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop closed under us (shutdown): nobody is listening
                self._cancelled = True

    # -- event loop ---------------------------------------------------------------------------

    async def _next_batch(self) -> list[str | _End]:
        if self._bursting:
            await asyncio.sleep(BURST_SECONDS)
        while True:
            with self._lock:
                if self._items:
                    items = list(self._items)
                    self._items.clear()
                    self._taken.notify()
                    now = time.monotonic()
                    self._bursting = now - self._last_taken < 2 * BURST_SECONDS
                    self._last_taken = now
                    return items
                waiter = self._waiter = self._loop.create_future()
            await waiter

    def _take(self, items: list[str | _End]) -> list[str]:
        chunks: list[str] = []
        for item in items:
            if isinstance(item, _End):
                self._finished, self._error = True, item.error
            else:
                chunks.append(item)
        return chunks

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def _close_quietly(streams: list[Any]) -> None:
    for stream in streams:
        with contextlib.suppress(Exception):  # a stream cut short may complain; we are done
            stream.close()


def _settle(future: "asyncio.Future[Any]", set_outcome: Callable[[Any], None], value: Any) -> None:
    if not future.done():
        set_outcome(value)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
