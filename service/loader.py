"""Chain files → specs: YAML parsed safely, validated strictly, every error pinned to file:line.

An error reads ``chains/summarize.yaml:12: model.params: unknown key 'temprature' (did you
mean 'temperature'?)``. Lines come from PyYAML's node tree, composed once per file and
walked along the error's location.
"""

import difflib
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from langchain_core.prompts.string import get_template_variables
from pydantic import BaseModel, ValidationError

from service.spec import NAME_PATTERN, ChainSpec, MessageSpec


@dataclass(frozen=True)
class ChainFileError:
    """One problem in one chain file, at one line."""

    path: Path
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        where = f" {self.where}:" if self.where else ""
        return f"{_display(self.path)}:{self.line}:{where} {self.message}"


class ChainFileErrors(Exception):
    """All problems found in a set of chain files."""

    def __init__(self, errors: list[ChainFileError]) -> None:
        super().__init__("\n".join(str(error) for error in errors))
        self.errors = errors


def chain_files(folder: Path) -> list[Path]:
    """The chain files of a folder, in name order."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def load_folder(folder: Path) -> dict[str, ChainSpec]:
    """Every chain in ``folder`` by name; raises :class:`ChainFileErrors` listing all problems."""
    if not folder.is_dir():
        raise ChainFileErrors([ChainFileError(folder, 0, "", "no such folder of chain files")])
    chains: dict[str, ChainSpec] = {}
    origins: dict[str, Path] = {}
    errors: list[ChainFileError] = []
    for path in chain_files(folder):
        try:
            spec = load_file(path)
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
                    f"{_display(origins[spec.name])}; chain names must be unique",
                )
            )
            continue
        chains[spec.name] = spec
        origins[spec.name] = path
    if errors:
        raise ChainFileErrors(errors)
    return chains


def load_file(path: Path) -> ChainSpec:
    """One chain file → its spec, with ``name`` filled in; raises :class:`ChainFileErrors`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChainFileErrors([ChainFileError(path, 0, "", f"cannot read: {exc}")]) from None
    return parse(text, path)


def parse(text: str, path: Path) -> ChainSpec:
    """Chain file text → spec; ``path`` names the file in errors and gives the default name."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ChainFileErrors(
            [ChainFileError(path, line, "", f"invalid YAML: {exc.problem or exc}")]
        ) from None
    if not isinstance(data, dict) or root is None:
        raise ChainFileErrors(
            [ChainFileError(path, 1, "", "a chain file is a mapping with model, prompt and inputs")]
        )
    locate = _Locator(path, root)
    duplicates = locate.duplicate_keys()
    if duplicates:
        raise ChainFileErrors(duplicates)
    try:
        spec = ChainSpec.model_validate(data)
    except ValidationError as exc:
        raise ChainFileErrors([locate.validation_error(error) for error in exc.errors()]) from None
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
    errors = check_variables(spec, locate)
    if errors:
        raise ChainFileErrors(errors)
    spec._source = (path, locate.error(("model",), "").line)
    return spec


def check_variables(spec: ChainSpec, locate: "_Locator") -> list[ChainFileError]:
    """The prompt's template variables must be exactly the declared inputs."""
    errors: list[ChainFileError] = []
    used: set[str] = set()
    declared = spec.inputs
    for index, message in enumerate(spec.prompt.messages):
        where = ("prompt", "messages", index)
        if message.role == "placeholder":
            names = {message.text}
            input_spec = declared.get(message.text)
            if input_spec is not None and input_spec.type != "messages":
                errors.append(
                    locate.error(
                        where,
                        f"placeholder {message.text!r} needs an input of type messages, "
                        f"but inputs.{message.text} is {input_spec.type}",
                    )
                )
        else:
            try:
                names = set(get_template_variables(message.text, _lc_format(spec)))
            except (ValueError, KeyError) as exc:
                errors.append(locate.error(where, f"invalid {spec.prompt.format} template: {exc}"))
                return errors  # which inputs it uses is unknown: say nothing about unused ones
            errors.extend(_messages_inputs_in_text(spec, message, names, locate, where))
        for name in sorted(names - declared.keys()):
            hint = _did_you_mean(name, declared)
            errors.append(
                locate.error(
                    where,
                    f"template uses {_show_var(spec, name)} but no input {name!r} is "
                    f"declared{hint}; declare it under inputs or fix the name",
                )
            )
        used |= names
    for name in sorted(declared.keys() - used):
        errors.append(
            locate.error(
                ("inputs", name),
                f"input {name!r} is declared but the prompt never uses it; "
                f"use {_show_var(spec, name)} in a message or remove the input",
            )
        )
    return errors


def _messages_inputs_in_text(
    spec: ChainSpec,
    message: MessageSpec,
    names: set[str],
    locate: "_Locator",
    where: tuple[Any, ...],
) -> list[ChainFileError]:
    return [
        locate.error(
            where,
            f"input {name!r} is a list of messages; splice it in with "
            f"'- placeholder: {name}' instead of {_show_var(spec, name)} in a {message.role} message",
        )
        for name in sorted(names)
        if name in spec.inputs and spec.inputs[name].type == "messages"
    ]


def _lc_format(spec: ChainSpec) -> str:
    return "f-string" if spec.prompt.format == "f-string" else "mustache"


def _show_var(spec: ChainSpec, name: str) -> str:
    return "{" + name + "}" if spec.prompt.format == "f-string" else "{{" + name + "}}"


def _did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Locator:
    """Maps a location in the parsed data (``("model", "params", "temprature")``) to a line."""

    def __init__(self, path: Path, root: yaml.Node) -> None:
        self.path = path
        self.root = root

    def error(self, loc: tuple[Any, ...], message: str) -> ChainFileError:
        line, parts = self._walk(loc)
        return ChainFileError(self.path, line, _dotted(parts), message)

    def validation_error(self, error: Any) -> ChainFileError:
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            parent, parts = self._node(loc[:-1])
            key = loc[-1]
            line = self._key_line(parent, key)
            known = _fields_at(parts)
            return ChainFileError(
                self.path, line, _dotted(parts), f"unknown key {key!r}{_did_you_mean(key, known)}"
            )
        if kind == "missing":
            line, parts = self._walk(loc[:-1])
            return ChainFileError(
                self.path, line, _dotted(parts), f"missing required key {loc[-1]!r}"
            )
        line, parts = self._walk(loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        return ChainFileError(self.path, line, _dotted(parts), message)

    def duplicate_keys(self) -> list[ChainFileError]:
        errors: list[ChainFileError] = []
        stack: list[tuple[yaml.Node, tuple[Any, ...]]] = [(self.root, ())]
        while stack:
            node, parts = stack.pop()
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
