"""Chain files → specs: YAML parsed safely, validated strictly, every error pinned to file:line.

An error reads ``chains/summarize.yaml:12: model.params: unknown key 'temprature' (did you
mean 'temperature'?)``. Lines come from PyYAML's node tree, composed once per file and
walked along the error's location.
"""

import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from service.chains import error_texts as texts
from service.chains.cache_points import check_cache
from service.chains.compat import check_model, image_problem
from service.chains.expansion import TooManyValues, compose
from service.chains.output_schema import resolve as resolve_output
from service.chains.reading import DEFAULT_MAX_BYTES, UnreadableFile, read_chain_file
from service.chains.spec import NAME_PATTERN, ChainSpec
from service.chains.templates import check_variables
from service.chaintests.loading import check_tests


@dataclass(frozen=True)
class ChainFileError:
    """One problem in one chain file, at one line."""

    path: Path
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{display_path(self.path)}:{self.line}:{where} {self.message}"

    def as_dict(self) -> dict[str, Any]:
        """For JSON (``/healthz``, ``/chains``); the path as :meth:`__str__` shows it."""
        return {
            "file": display_path(self.path),
            "line": self.line,
            "where": self.where,
            "message": self.message,
            "text": str(self),
        }


class ChainFileErrors(Exception):
    """All problems found in a set of chain files."""

    def __init__(self, errors: list[ChainFileError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


def chain_files(folder: Path) -> list[Path]:
    """The chain files of a folder, in name order."""
    return sorted(path for path in folder.iterdir() if is_chain_file(path))


def is_chain_file(path: Path) -> bool:
    """``*.yaml`` or ``*.yml``, and no editor's dropping (``.x.yaml.swp``, ``.#x.yaml``,
    ``#x.yaml#``, ``x.yaml~``)."""
    name = path.name
    return (
        name.endswith((".yaml", ".yml"))
        and not name.startswith((".", "#"))
        and not name.endswith("~")
    )


def load_folder(folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, ChainSpec]:
    """Every chain in ``folder`` by name; raises :class:`ChainFileErrors` listing all problems."""
    if not folder.is_dir():
        raise ChainFileErrors([ChainFileError(folder, 0, "", "no such folder of chain files")])
    chains: dict[str, ChainSpec] = {}
    origins: dict[str, Path] = {}
    errors: list[ChainFileError] = []
    for path in chain_files(folder):
        try:
            spec = load_file(path, max_bytes)
        except ChainFileErrors as exc:
            errors.extend(exc.errors)
            continue
        assert spec.name is not None
        if spec.name in chains:
            errors.append(
                ChainFileError(
                    path,
                    1,
                    "name",
                    f"chain {spec.name!r} is already defined in "
                    f"{display_path(origins[spec.name])}; chain names must be unique: "
                    "rename one of them",
                )
            )
            continue
        chains[spec.name] = spec
        origins[spec.name] = path
    if errors:
        raise ChainFileErrors(errors)
    return chains


def load_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> ChainSpec:
    """One chain file → its spec, with ``name`` filled in; raises :class:`ChainFileErrors`.

    ``path`` must be a regular file of at most ``max_bytes`` inside its folder
    (:mod:`service.chains.reading`).
    """
    try:
        text = read_chain_file(path, max_bytes)
    except UnreadableFile as exc:
        raise ChainFileErrors([ChainFileError(path, exc.line, "", exc.message)]) from None
    return parse(text, path, max_bytes)


def parse(text: str, path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> ChainSpec:
    """Chain file text → spec; ``path`` names the file in errors and gives the default name."""
    try:
        root = compose(text)  # bounded first: aliases expand as values are built
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader: no Python objects from tags
    except TooManyValues as exc:
        raise ChainFileErrors([ChainFileError(path, exc.line, "", exc.message)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        lines = text.splitlines()
        source_line = lines[line - 1] if 0 < line <= len(lines) else ""
        message = texts.yaml_problem(str(exc.problem or exc), source_line)
        raise ChainFileErrors([ChainFileError(path, line, "", message)]) from None
    except RecursionError:
        raise ChainFileErrors([ChainFileError(path, 1, "", "nested too deeply")]) from None
    if not isinstance(data, dict) or not data or root is None:
        raise ChainFileErrors([ChainFileError(path, 1, "", texts.not_a_chain(data))])
    locate = _Locator(path, root, text)
    duplicates = locate.duplicate_keys()
    if duplicates:
        raise ChainFileErrors(duplicates)
    try:
        spec = ChainSpec.model_validate(data)
    except ValidationError as exc:
        raise ChainFileErrors(locate.validation_errors(exc.errors())) from None
    if spec.name is None:
        spec.name = path.stem
        if re.fullmatch(NAME_PATTERN, path.stem) is None:
            raise ChainFileErrors(
                [
                    ChainFileError(
                        path,
                        1,
                        "name",
                        f"the file name {path.stem!r} is not a valid chain name "
                        "(lowercase letters, digits, - and _); rename the file or set name:",
                    )
                ]
            )
    # The output schema first: a $ref is replaced by its file's schema before anything uses it.
    errors = [locate.error(p.where, p.message) for p in resolve_output(spec, path, max_bytes)]
    errors += check_variables(spec, locate) + check_tests(spec, locate)
    for index, model in enumerate(spec.models):  # the model, then each fallback at its item
        at: tuple[Any, ...] = ("model",) if index == 0 else ("model", "fallbacks", index - 1)
        problems = check_model(model)
        errors += [locate.error(at + problem.where[1:], problem.message) for problem in problems]
        if any(message.role == "image" for message in spec.prompt.messages):
            cannot = image_problem(model)
            errors += [locate.error((*at, "provider"), cannot)] if cannot else []
    errors += [locate.error(problem.where, problem.message) for problem in check_cache(spec)]
    if errors:
        raise ChainFileErrors(errors)
    spec._source = (path, locate.error(("model",), "").line)
    return spec


def display_path(path: Path) -> str:
    """``path`` relative to the working directory if it is below it; the file's own name, not
    a symlink's target (which may be a loop, or outside the folder)."""
    try:
        return str((path.parent.resolve() / path.name).relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):  # not below; a loop in the folder's own path
        return str(path)


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, with values it resolves but cannot build (``2023-02-30`` as a date,
    a 5000-digit integer) as YAML errors at their line rather than a bare ``ValueError``."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:
            problem = texts.bad_scalar(str(node.value), str(exc))
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


class _Locator:
    """Maps a location in the parsed data (``("model", "params", "temprature")``) to a line."""

    def __init__(self, path: Path, root: yaml.Node, source: str = "") -> None:
        self.path = path
        self.root = root
        self.source = source

    def error(self, loc: tuple[Any, ...], message: str) -> ChainFileError:
        line, parts = self._walk(loc)
        return ChainFileError(self.path, line, _dotted(parts), message)

    def validation_errors(self, raw: list[Any]) -> list[ChainFileError]:
        """pydantic's errors → ours, one per problem, in line order."""
        unknown: dict[tuple[Any, ...], set[Any]] = {}
        for error in raw:
            if error["type"] == "extra_forbidden":
                unknown.setdefault(tuple(error["loc"][:-1]), set()).add(error["loc"][-1])
        errors: list[ChainFileError] = []
        unions: dict[tuple[Any, ...], list[str]] = {}
        for error in raw:
            loc = tuple(error["loc"])
            if error["type"] != "extra_forbidden" and loc in unknown:
                continue  # an item with an unknown key also fails "exactly one key": say it once
            if loc[-1:] == ("content",) and "role" in unknown.get(loc[:-1], ()):
                continue  # role/content: one error for the pair
            if self._is_union_member(loc):
                unions.setdefault(loc[:-1], []).append(error["type"])
                continue
            errors.append(self.validation_error(error))
        for loc, kinds in unions.items():
            node, parts, key = self._node(loc, with_key=True)
            line = int((key or node).start_mark.line) + 1
            errors.append(
                ChainFileError(self.path, line, _dotted(parts), texts.union_problem(kinds, node))
            )
        return sorted(dict.fromkeys(errors), key=lambda error: error.line)

    def validation_error(self, error: Any) -> ChainFileError:
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            parent, parts = self._node(loc[:-1])
            key = loc[-1]
            line = self._key_line(parent, key)
            value, value_parts = self._node(loc)
            found = value if len(value_parts) == len(loc) else None
            message = texts.unknown_key(key, parts, _fields_at(parts), found)
            return ChainFileError(self.path, line, _dotted(parts), message)
        if kind == "missing":
            line, parts = self._walk(loc[:-1])
            message = texts.missing_key(loc[-1], parts)
            return ChainFileError(self.path, line, _dotted(parts), message)
        node, parts, key = self._node(loc, with_key=True)
        line = int((key or node).start_mark.line) + 1
        found = node if len(parts) == len(loc) else None
        message = texts.value_problem(error, parts, found, self.source)
        return ChainFileError(self.path, line, _dotted(parts), message)

    def _is_union_member(self, loc: tuple[Any, ...]) -> bool:
        """pydantic names the member of a union it tried as a last part (``enum.0.str``)."""
        if not loc or not isinstance(loc[-1], str):
            return False
        node, parts = self._node(loc[:-1])
        return len(parts) == len(loc) - 1 and not isinstance(node, yaml.MappingNode)

    def duplicate_keys(self) -> list[ChainFileError]:
        errors: list[ChainFileError] = []
        stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(self.root, ())]
        seen_nodes: set[int] = set()
        while stack:
            node, parts = stack.pop()
            # Aliases share nodes: visiting each once keeps an alias bomb linear here.
            if id(node) in seen_nodes:
                continue
            seen_nodes.add(id(node))
            if isinstance(node, yaml.MappingNode):
                seen: set[str] = set()
                for key, value in node.value:
                    if key.value in seen:
                        errors.append(
                            ChainFileError(
                                self.path,
                                key.start_mark.line + 1,
                                _dotted(parts),
                                f"key {key.value!r} appears twice; keep one",
                            )
                        )
                    seen.add(key.value)
                    stack.append((value, (*parts, key.value)))
            elif isinstance(node, yaml.SequenceNode):
                stack.extend((item, (*parts, i)) for i, item in enumerate(node.value))
        return sorted(errors, key=lambda error: error.line)

    def _walk(self, loc: tuple[Any, ...]) -> tuple[int, tuple[Any, ...]]:
        """The line of the deepest node along ``loc`` (its key's line, for a mapping value)."""
        node, parts, key = self._node(loc, with_key=True)
        return int((key or node).start_mark.line) + 1, parts

    def _node(self, loc: tuple[Any, ...], with_key: bool = False) -> Any:
        """The deepest node along ``loc``, the part of ``loc`` that led there (and its key)."""
        node: yaml.Node = self.root
        key: yaml.Node | None = None
        parts: tuple[Any, ...] = ()
        for part in loc:
            child = None
            if isinstance(node, yaml.MappingNode):
                key, child = next(
                    ((k, v) for k, v in node.value if k.value == str(part)), (None, None)
                )
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                key, child = None, node.value[part] if part < len(node.value) else None
            if child is None:
                break
            node, parts = child, (*parts, part)
        return (node, parts, key) if with_key else (node, parts)

    @staticmethod
    def _key_line(mapping: yaml.Node, key: Any) -> int:
        if isinstance(mapping, yaml.MappingNode):
            for key_node, _ in mapping.value:
                if key_node.value == str(key):
                    return int(key_node.start_mark.line) + 1
        return int(mapping.start_mark.line) + 1


def _dotted(parts: tuple[Any, ...]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _fields_at(parts: tuple[Any, ...]) -> list[str]:
    """Field names of the spec model at a data location, for did-you-mean hints."""
    model: Any = ChainSpec
    pending = list(parts)
    while pending:
        field = model.model_fields.get(pending.pop(0)) if _is_model(model) else None
        if field is None:
            return []
        annotation = field.annotation
        origin = typing.get_origin(annotation)
        if origin in (list, dict):
            if pending:
                pending.pop(0)
            annotation = typing.get_args(annotation)[-1]
        elif origin in (typing.Union, types.UnionType):
            annotation = next((a for a in typing.get_args(annotation) if _is_model(a)), None)
        model = annotation
    return list(model.model_fields) if _is_model(model) else []


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)
