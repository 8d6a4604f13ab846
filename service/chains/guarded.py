"""Chain files loaded in child processes with a time and a memory limit (reloads only).

A reload runs inside the server. The loader bounds a file's size and values (a 1 MB file loads
in a second or two), but a raised ``CHAINSERVE_MAX_CHAIN_FILE_BYTES``, or whatever those bounds
miss, could still take minutes or gigabytes and stall the watcher, or the whole server: in a
child process it becomes that file's error, and every other file reloads.

Children come from a fork server that has imported the loader once, so each load costs a fork
(milliseconds), not a Python start-up. As with every start method but fork (unsafe in a threaded
server), a child imports the main script first: it must start nothing outside
``if __name__ == "__main__":`` (the entry points of chainserve, uvicorn and pytest comply).
Start-up loads in-process: a cold start on Lambda pays for every extra process.
"""

import multiprocessing
import multiprocessing.forkserver
import os
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from service.chains.loader import ChainFileError, ChainFileErrors, load_file
from service.chains.reading import DEFAULT_MAX_BYTES
from service.chains.spec import ChainSpec

# A chain file loads in milliseconds and a few MB; these only stop hostile or runaway files.
TIMEOUT_SECONDS = 5.0
MAX_MEMORY_MB = 256
_AT_ONCE = max(1, os.cpu_count() or 1)

Loaded = ChainSpec | list[ChainFileError]
_context: Any = None


def load_guarded(
    paths: list[Path],
    timeout: float = TIMEOUT_SECONDS,
    max_memory_mb: int = MAX_MEMORY_MB,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[Path, Loaded]:
    """Each file's spec, or its errors; a file over a limit gets an error saying which.

    ``max_bytes`` is the loader's own limit on a file's size (:func:`load_file`).
    """
    results: dict[Path, Loaded] = {}
    for start in range(0, len(paths), _AT_ONCE):
        batch = paths[start : start + _AT_ONCE]
        children = [_start(path, max_memory_mb, max_bytes) for path in batch]
        deadline = time.monotonic() + timeout
        for path, (process, receiver) in zip(batch, children, strict=True):
            results[path] = _collect(path, process, receiver, deadline, timeout, max_memory_mb)
    return results


def start_server() -> None:
    """Start the fork server now (it imports the loader: about a second), not at the first save."""
    try:
        _get_context()
        multiprocessing.forkserver.ensure_running()
    except Exception:  # only a warm-up: the first guarded load tries again, and reports
        pass


def _get_context() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["service.chains.loader"])
    return _context


def _start(path: Path, max_memory_mb: int, max_bytes: int) -> tuple[Any, Connection]:
    context = _get_context()
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_load_in_child, args=(path, max_memory_mb, max_bytes, sender), daemon=True
    )
    process.start()
    sender.close()  # the child holds it now: EOF here means the child is gone
    return process, receiver


def _collect(
    path: Path,
    process: Any,
    receiver: Connection,
    deadline: float,
    timeout: float,
    max_memory_mb: int,
) -> Loaded:
    try:
        if receiver.poll(max(0.0, deadline - time.monotonic())):
            try:
                result: Any = receiver.recv()
            except EOFError:  # the child died before it could answer
                result = None
        else:
            process.kill()
            return _error(
                path,
                f"took longer than {timeout:g} s to load; make it smaller",
            )
    finally:
        receiver.close()
        process.join(timeout=5)
        if process.is_alive():  # answered, then hung on its way out
            process.kill()
            process.join()
    if result == "memory":
        return _error(
            path,
            f"used more than {max_memory_mb} MB to load; make it smaller",
        )
    if result is None:
        return _error(
            path,
            f"loading stopped the loader (exit code {process.exitcode}); "
            f"the file may need more than {max_memory_mb} MB",
        )
    assert isinstance(result, ChainSpec | list)
    return result


def _load_in_child(path: Path, max_memory_mb: int, max_bytes: int, sender: Connection) -> None:
    try:
        _limit_memory(max_memory_mb)
        result: Any
        try:
            result = load_file(path, max_bytes)
        except ChainFileErrors as exc:
            result = exc.errors  # the exception itself would not survive pickling
        except MemoryError:
            result = "memory"
        except Exception as exc:  # a loader bug must not look like a hang or a crash
            result = [ChainFileError(path, 0, "", f"cannot load: {exc}")]
        sender.send(result)
    except BaseException:  # even answering failed (out of memory): the parent says so
        os._exit(3)


def _limit_memory(max_memory_mb: int) -> None:
    """Cap the address space at what the child uses now plus ``max_memory_mb`` (Linux)."""
    try:
        import resource

        with open("/proc/self/statm") as statm:
            now = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = now + max_memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, OSError, ValueError):
        pass  # no /proc (macOS): the time limit alone guards the load


def _error(path: Path, message: str) -> list[ChainFileError]:
    return [ChainFileError(path, 1, "", message)]
