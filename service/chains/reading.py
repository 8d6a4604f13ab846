"""A chain file's text from disk: regular files inside the chains folder, of bounded size.

Whatever sits in the folder under a ``*.yaml`` name must end as text or as an error naming the
file, never as a hang, a traceback or gigabytes read: a FIFO blocks whoever opens it, a device
such as ``/dev/zero`` never ends, a symlink loop leads nowhere, and a 100 MB list took minutes and
gigabytes to parse. So a file is stat'ed before it is opened (only regular files are), opened
without blocking, and read to at most ``max_bytes`` + 1 bytes.

Symlinks are followed only within the folder (``x.yaml -> versions/x-v2.yaml``, a Kubernetes
ConfigMap's ``..data`` links): a chains folder should not pull in arbitrary files, whose text
would then appear in error messages and prompts.

The same rules read other files a chain file names (a chain test's ``photo: cat.png``):
:func:`read_file_bytes` with a folder, a size limit and that file's own :class:`Wording`.
"""

import errno
import os
import stat
from pathlib import Path
from typing import Any, Protocol

from service.chains import error_texts as texts

# 1 MB: chain files are a few KB, and pure-Python PyYAML parses about 1 MB a second.
DEFAULT_MAX_BYTES = 1_048_576


class UnreadableFile(Exception):
    """Why a chain file's text cannot be had; ``line`` is 0 when no line is to blame."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Wording(Protocol):
    """How each refusal is worded: chain files' words are :mod:`error_texts`'s; another kind
    of file brings its own (naming its limit's setting and its fix)."""

    def outside_folder(self, target: Any) -> str: ...
    def not_regular(self, kind: str) -> str: ...
    def too_big(self, size: int, limit: int, grew: bool = False) -> str: ...
    def symlink_loop(self) -> str: ...
    def dangling_symlink(self, target: str) -> str: ...
    def cannot_read(self, exc: OSError) -> str: ...


def read_chain_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The text of the chain file ``path``, whose folder is ``path.parent``.

    Raises :class:`UnreadableFile` for anything but a regular UTF-8 file of at most
    ``max_bytes`` inside that folder.
    """
    data = read_file_bytes(path, path.parent, max_bytes, texts)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise UnreadableFile(texts.not_utf8(data[exc.start]), line) from None
    # Universal newlines, as Path.read_text read chain files: lines count the same everywhere.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_file_bytes(path: Path, folder: Path, max_bytes: int, words: Wording) -> bytes:
    """The bytes of ``path``: :class:`UnreadableFile`, worded by ``words``, for anything but a
    regular file of at most ``max_bytes`` inside ``folder`` (symlinks followed only within)."""
    try:
        info = os.stat(path)  # follows symlinks: what would be read
    except OSError as exc:
        raise UnreadableFile(_stat_problem(path, exc, words)) from None
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(os.path.realpath(folder)):
        raise UnreadableFile(words.outside_folder(real))
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile(words.not_regular(_kind(info.st_mode)))
    if info.st_size > max_bytes:  # refused before a byte is read
        raise UnreadableFile(words.too_big(info.st_size, max_bytes))
    data = _read_at_most(real, max_bytes + 1, words)
    if len(data) > max_bytes:  # it grew since the stat
        raise UnreadableFile(words.too_big(max_bytes, max_bytes, grew=True))
    return data


def _read_at_most(path: Path, limit: int, words: Wording) -> bytes:
    # O_NONBLOCK: should a FIFO replace the file after the stat, opening it does not wait for
    # a writer; O_NOFOLLOW: nor does a symlink swapped in at the last moment get followed.
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise UnreadableFile(words.cannot_read(exc)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(words.not_regular(_kind(mode)))
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(limit - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(words.cannot_read(exc)) from None
    finally:
        os.close(fd)


def _stat_problem(path: Path, exc: OSError, words: Wording) -> str:
    if exc.errno == errno.ELOOP:
        return words.symlink_loop()
    if exc.errno == errno.ENOENT and os.path.islink(path):
        return words.dangling_symlink(os.readlink(path))
    return words.cannot_read(exc)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "neither a file nor a folder"
