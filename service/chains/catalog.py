"""The chains being served: each spec with its runnable and input models, reloadable.

Owned by the app (``app.state.catalog``), never module-level. Each file loads on its own: one
broken file keeps its last good version serving and never holds back the others' reloads.
"""

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import Runnable

from service.chains.guarded import Loaded, load_guarded
from service.chains.inputs import ChainInputs
from service.chains.loader import (
    ChainFileError,
    ChainFileErrors,
    chain_files,
    display_path,
    load_file,
)
from service.chains.models import BedrockClients
from service.chains.runnable import Assembly
from service.chains.spec import ChainSpec
from service.runs import errors
from service.settings import Settings

log = logging.getLogger("chainserve")


@dataclass(frozen=True)
class Chain:
    spec: ChainSpec
    assembly: Assembly
    inputs: ChainInputs
    runnable: Runnable[dict[str, Any], Any]
    """What a run runs: ``assembly.runnable``, or one request's (``assembly.with_params``)."""

    @property
    def name(self) -> str:
        assert self.spec.name is not None
        return self.spec.name

    @property
    def model_id(self) -> str:
        return self.spec.model.id

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.spec.description,
            "model": {"provider": self.spec.model.provider, "id": self.model_id}
            | (
                {"fallbacks": [m.id for m in self.spec.models[1:]]}
                if self.spec.model.fallbacks
                else {}
            ),
            "inputs": {
                name: item.model_dump(exclude_none=True) | {"required": item.is_required}
                for name, item in self.spec.inputs.items()
            },
        }


@dataclass
class _File:
    """One chain file as last loaded: its stat, its last good chain, its current errors."""

    stamp: tuple[int, int, int]
    chain: Chain | None = None
    errors: list[ChainFileError] = field(default_factory=list)


class Catalog:
    """The chains of a folder, each file loaded on its own.

    A file with errors keeps its last good chain serving (or none, if it never loaded) while the
    others load; ``errors`` lists the current problems of every file.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._clients = BedrockClients(settings)
        self._files: dict[Path, _File] = {}
        self._owners: dict[str, Path] = {}
        self._chains: dict[str, Chain] = {}
        self.errors: list[ChainFileError] = []
        self.version = 0

    def load(self, keep_going: bool = False) -> None:
        """Load every chain file in this process.

        Raises :class:`ChainFileErrors` listing every problem; with ``keep_going``, only when
        the folder is missing: the good files serve and :attr:`errors` lists the rest.
        """
        folder = self._settings.chains_dir
        if not folder.is_dir():
            raise ChainFileErrors([ChainFileError(folder, 0, "", "no such folder of chain files")])
        self.refresh(guarded=False)
        if self.errors and not keep_going:
            raise ChainFileErrors(self.errors)

    def reload(self) -> list[Path]:
        """Load what changed since the last load (each file in a guarded child) and log it."""
        before = self.errors
        changed = self.refresh(guarded=True)
        if changed:
            names = ", ".join(sorted(self._chains)) or "none"
            files = ", ".join(p.name + ("" if p in self._files else " (removed)") for p in changed)
            log.info("reloaded %s; serving %s; %s", files, names, _count(self.errors))
        if changed or self.errors != before:
            self.log_errors()
        return changed

    def log_errors(self) -> None:
        for error in self.errors:
            served = self._files.get(error.path)
            keeps = " (its last good version keeps serving)" if served and served.chain else ""
            log.error("%s%s", error, keeps)

    def refresh(self, guarded: bool) -> list[Path]:
        """Load new and changed files, forget deleted ones; the files that changed."""
        folder = self._settings.chains_dir
        try:
            listed = chain_files(folder)
        except OSError as exc:  # the folder is gone or unreadable: keep what is served
            self.errors = [ChainFileError(folder, 0, "", f"cannot list chain files: {exc}")]
            return []
        stamps = {}
        for path in listed:
            with contextlib.suppress(FileNotFoundError):  # deleted since it was listed
                stamps[path] = _stamp(path)
        gone = [path for path in self._files if path not in stamps]
        changed = [
            p for p, s in stamps.items() if p not in self._files or self._files[p].stamp != s
        ]
        for path in gone:
            del self._files[path]
        max_bytes = self._settings.max_chain_file_bytes
        if guarded:
            loaded = _load_guarded(changed, max_bytes)
        else:
            loaded = {path: _load(path, max_bytes) for path in changed}
        for path in changed:
            self._files[path] = self._update(path, stamps[path], loaded[path])
        self._publish()
        return sorted([*changed, *gone])

    def _update(self, path: Path, stamp: tuple[int, int, int], loaded: Loaded) -> _File:
        entry = self._files.get(path) or _File(stamp)
        entry.stamp = stamp
        if not isinstance(loaded, ChainSpec):
            entry.errors = loaded  # the last good chain, if any, keeps serving
            return entry
        try:
            entry.chain, entry.errors = self._build(loaded), []
        except Exception as exc:  # langchain-aws and botocore check models as they build
            line = loaded._source[1]
            entry.errors = [ChainFileError(path, line, "model", f"cannot build: {exc}")]
        return entry

    def _publish(self) -> None:
        """Serve each file's chain; a name two files claim stays with the file that had it."""
        owners: dict[str, Path] = {}
        for name, path in self._owners.items():
            entry = self._files.get(path)
            if entry is not None and entry.chain is not None and entry.chain.name == name:
                owners[name] = path
        conflicts: list[ChainFileError] = []
        for path, entry in sorted(self._files.items()):
            if entry.chain is None:
                continue
            owner = owners.setdefault(entry.chain.name, path)
            if owner != path:
                conflicts.append(
                    ChainFileError(
                        path,
                        1,
                        "name",
                        f"chain {entry.chain.name!r} is already defined in {display_path(owner)}; "
                        "chain names must be unique: rename one of them",
                    )
                )
        errors = [error for entry in self._files.values() for error in entry.errors]
        self._owners = owners
        chains: dict[str, Chain] = {}
        for name, path in sorted(owners.items()):
            chain = self._files[path].chain
            assert chain is not None
            chains[name] = chain
        self._chains = chains
        self.errors = sorted([*errors, *conflicts], key=lambda e: (str(e.path), e.line))
        self.version += 1

    def get(self, name: str) -> Chain:
        chain = self._chains.get(name)
        if chain is None:
            raise errors.chain_not_found(name, sorted(self._chains))
        return chain

    def __iter__(self) -> Any:
        return iter(list(self._chains.values()))

    def __len__(self) -> int:
        return len(self._chains)

    def _build(self, spec: ChainSpec) -> Chain:
        settings = self._settings
        inputs = ChainInputs(
            spec, settings.max_input_length, settings.max_batch_size, settings.max_image_bytes
        )
        assembly = Assembly(spec, self._clients)
        return Chain(spec, assembly, inputs, assembly.runnable)


def _load_guarded(paths: list[Path], max_bytes: int) -> dict[Path, Loaded]:
    try:
        return load_guarded(paths, max_bytes=max_bytes)
    except Exception as exc:  # no child process to be had (a process limit): reload anyway
        log.warning("cannot load chain files in a child process (%s); loading them here", exc)
        return {path: _load(path, max_bytes) for path in paths}


def _load(path: Path, max_bytes: int) -> Loaded:
    try:
        return load_file(path, max_bytes)
    except ChainFileErrors as exc:
        return exc.errors


def _stamp(path: Path) -> tuple[int, int, int]:
    """What tells a changed file: an editor that saves by renaming changes the inode too."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        if not os.path.islink(path):
            raise  # deleted
        stat = os.lstat(path)  # a symlink to nothing: loading it says so
    except OSError:  # a symlink loop, say: loading it says so
        stat = os.lstat(path)
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)


def _count(errors: list[ChainFileError]) -> str:
    return f"{len(errors)} error" + ("" if len(errors) == 1 else "s")
