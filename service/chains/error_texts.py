"""Wording of chain file errors: raw YAML, pydantic and template problems → one line each that
says what to write instead.

The loader pins every text to ``file:line: where:``; this module only words it. Texts name the
keys a prompt engineer writes, never our model classes, and never show a whole value: a value
can be huge (a YAML alias bomb), so at most a short, truncated piece of it.
"""

import difflib
import re
import typing
from typing import Any

import yaml

MESSAGE_KEYS = ("system", "user", "assistant", "placeholder", "image")
COMMON_PARAMS = ("temperature", "max_tokens", "top_p", "stop", "top_k")
EXAMPLE = (
    'model: {id: anthropic.claude-3-haiku-20240307-v1:0}, prompt: {messages: [{user: "Summarize '
    '{text}"}]}, inputs: {text: {}}'
)
_NEEDS = "a chain file needs model and prompt (and inputs for the prompt's variables), e.g. "
# Other tools' names for chat roles and parameters, where difflib would guess wrong or not at all.
_MESSAGE_ALIASES = {"human": "user", "ai": "assistant", "bot": "assistant", "developer": "system"}
_PARAM_ALIASES = {"stop_sequences": "stop"}
# A message line whose text starts with "{": YAML reads it as a mapping, or fails on it.
_MESSAGE_LINE = re.compile(
    r"^\s*(?:-\s+)?(?P<key>system|user|assistant|placeholder|human|ai)\s*:\s+(?P<text>.*?)\s*$"
)

_PLAIN = {
    "model_type": "must be a mapping of key: value lines",
    "model_attributes_type": "must be a mapping of key: value lines",
    "dict_type": "must be a mapping of key: value lines",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list: one '- item' line each, or [a, b]",
    "string_too_short": "must not be empty",
}
# Union members as pydantic words them in a location, and as a person would.
_UNION_WORDS = {"string_type": "text", "int_type": "a number", "float_type": "a number"}


def did_you_mean(word: Any, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def yaml_problem(problem: str, line: str) -> str:
    """A YAML parse error, given the text of the line it points at."""
    indent = line[: len(line) - len(line.lstrip())]
    if "\t" in indent or "'\\t'" in problem:
        return "a tab in the indentation: indent with spaces, not tabs"
    message = _MESSAGE_LINE.match(line)
    if message:
        key, text = message["key"], message["text"]
        if text.startswith("{"):
            return quote_template(key, text)
        if problem == "mapping values are not allowed here":
            return f'text with ": " in it must be quoted: - {key}: {_quoted(text)}'
    return f"invalid YAML: {problem}"


def quote_template(key: str, text: str) -> str:
    return f"a template that starts with {{ must be quoted: - {key}: {_quoted(text)}"


def not_a_chain(data: Any) -> str:
    """The file's content is no mapping of keys, or an empty one."""
    if data is None:
        return "the file is empty; " + _NEEDS + EXAMPLE
    if data == {}:
        return "the file is an empty mapping; " + _NEEDS + EXAMPLE
    kind = "a list" if isinstance(data, list) else "a single value"
    return f"a chain file is a mapping of keys, not {kind}; " + _NEEDS + EXAMPLE


def unknown_key(key: Any, parts: tuple[Any, ...], known: list[str], value: Any) -> str:
    """``key`` is not allowed at ``parts``; ``known`` are the keys that are."""
    if parts[:2] == ("prompt", "messages") and len(parts) == 3:
        if key in ("role", "content"):
            return (
                f"unknown key {key!r}: messages are written - user: text, not role/content "
                "(keys: system, user, assistant, placeholder, image)"
            )
        hint = _hint(key, _MESSAGE_ALIASES) or did_you_mean(key, MESSAGE_KEYS)
        return (
            f"unknown key {key!r}{hint}: a message has one of the keys system, user, "
            "assistant, placeholder, image, written - user: text"
        )
    if parts == ("model", "params"):
        hint = _hint(key, _PARAM_ALIASES) or did_you_mean(key, COMMON_PARAMS)
        if hint:
            return f"unknown key {key!r}{hint}"
        shown = value.value if isinstance(value, yaml.ScalarNode) and value.value else "…"
        return (
            f"unknown key {key!r}: {key} is model-specific, not one of the inference "
            f"parameters chain files take ({', '.join(COMMON_PARAMS)}); set it under "
            f"model.additional_request_fields: {{{key}: {_piece(shown)}}}"
        )
    hint = did_you_mean(key, known)
    if hint or not known:
        return f"unknown key {key!r}{hint}"
    return f"unknown key {key!r}; allowed here: {', '.join(known)}"


def missing_key(key: Any, parts: tuple[Any, ...]) -> str:
    hints = {
        ("model",): ", e.g. model: {id: anthropic.claude-3-haiku-20240307-v1:0}",
        ("model", "id"): ": the Bedrock model id, e.g. anthropic.claude-3-haiku-20240307-v1:0",
        ("prompt",): ', e.g. prompt: {messages: [{user: "Summarize {text}"}]}',
        ("prompt", "messages"): ': the list of messages, e.g. - user: "Summarize {text}"',
    }
    return f"missing required key {key!r}" + hints.get((*parts, key), "")


def value_problem(error: dict[str, Any], parts: tuple[Any, ...], node: Any, source: str) -> str:
    """A value of the wrong type or out of range; ``node`` is its YAML node, if found."""
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return _empty_message(node) or str(error["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and _is_message_text(parts) and _is_flow_mapping(node):
        return quote_template(parts[-1], source[node.start_mark.index : node.end_mark.index])
    if kind in ("model_type", "dict_type") and parts[:1] == ("inputs",) and len(parts) == 2:
        return (
            f"an input is a mapping of key: value lines{_found(node)}; "
            f"write {parts[1]}: {{type: string}}"
        )
    if kind == "model_type" and parts[:2] == ("prompt", "messages"):
        return f"a message is one line - user: text (or system, assistant, placeholder, image){_found(node)}"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        got = node.value if isinstance(node, yaml.ScalarNode) else ""
        return f"must be one of: {', '.join(allowed)}{did_you_mean(got, allowed)}"
    if kind == "string_pattern_mismatch" and parts == ("name",):
        return (
            "must be lowercase letters, digits, - and _, starting with a letter or digit "
            "(it is the URL segment), e.g. my-chain"
        )
    if kind in ("too_short", "string_too_short") and parts == ("prompt", "messages"):
        return 'needs at least one message, e.g. - user: "Summarize {text}"'
    bounds = {
        "greater_than_equal": "must be at least {ge}",
        "greater_than": "must be more than {gt}",
        "less_than_equal": "must be at most {le}",
        "less_than": "must be less than {lt}",
        "too_short": "needs at least {min_length} item",
        "too_long": "takes at most {max_length} items",
        "string_too_long": "takes at most {max_length} characters",
    }
    if kind in bounds:
        try:
            shown = _found(node) if isinstance(node, yaml.ScalarNode) else ""
            text = bounds[kind].format(**{k: _number(v) for k, v in ctx.items()})
            plural = kind == "too_short" and ctx["min_length"] != 1
            return text + ("s" if plural else "") + shown
        except KeyError:
            pass
    if kind in _PLAIN:
        quote = kind == "string_type" and isinstance(node, yaml.ScalarNode) and node.value
        if quote:
            return f"{_PLAIN[kind]}; put it in quotes: {_quoted(node.value)}"
        return _PLAIN[kind] + ("" if kind == "string_too_short" else _found(node))
    # Anything else: pydantic's words, without the class names it names.
    text = re.sub(r" or instance of \w+", "", str(error["msg"]))
    return text.replace("Input should be", "must be").replace("Value error, ", "")


def union_problem(kinds: list[str], node: Any) -> str:
    """One value that matched none of a union's members (``enum: [[a]]``)."""
    words = list(dict.fromkeys(_UNION_WORDS.get(kind, "another type") for kind in kinds))
    return f"must be {' or '.join(words)}{_found(node)}"


def template_name(name: str) -> str:
    """An f-string placeholder whose name is no variable name."""
    if name == "":
        return (
            "an empty {} placeholder: name the variable, e.g. {text}, "
            "or write {{}} for literal braces"
        )
    if name.strip().isidentifier():
        return f"write {{{name.strip()}}} without spaces inside the braces"
    return (
        f"the template has literal braces ({{{_piece(name)}…}}): write "
        "literal braces as {{ and }}, or use format: mustache"
    )


def invalid_template(fmt: str, problem: str) -> str:
    """A template the template engine refused."""
    bad_name = re.match(r"Invalid variable name '(.*?)'", problem)
    if fmt == "f-string" and bad_name:
        return (
            f"{{{bad_name[1]}}} is not a variable name: use an input's name, e.g. {{text}}, or "
            "write literal braces as {{ and }}"
        )
    if fmt == "f-string" and ("'}'" in problem or "'{'" in problem):
        return (
            f"invalid f-string template: {problem}; write literal braces as {{{{ and }}}}, "
            "or use format: mustache"
        )
    return f"invalid {fmt} template: {problem}"


def format_spec(name: str, spec: str, conversion: str | None) -> str:
    """An f-string field with a format spec or conversion: ``{text:>900000000}`` makes megabytes
    of one character, ``{text!r}`` a Python repr."""
    field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
    return (
        f"format specs and conversions are not allowed in templates ({_piece(field)}}}): "
        f"write {{{name}}}"
    )


def mustache_tag(kind: str, key: str) -> str:
    """A mustache tag chain files refuse: it would render wrong, or nothing, at every request."""
    if kind == "partial":
        return (
            f"mustache partials are not supported ({{{{> {_piece(key)}}}}}): chain files have "
            "nothing to include; write the text into the message"
        )
    if kind == "set delimiter":
        return (
            f"mustache set-delimiter tags are not supported ({{{{={_piece(key)}=}}}}): write "
            "variables as {{name}}"
        )
    if key == ".":
        return "{{.}} outside a section: write the input's name, e.g. {{text}}"
    return (
        f"{{{{{_piece(key)}}}}}: inputs are plain values with no fields to look up: "
        f"write {{{{{key.split('.')[0]}}}}}"
    )


def invalid_mustache(problem: str) -> str:
    """chevron's multi-line syntax errors → one line."""
    never_closed = re.search(r'the tag "(.*?)" was never closed', problem)
    if never_closed:
        name = never_closed[1]
        return f"the section {{{{#{name}}}}} is never closed: end it with {{{{/{name}}}}}"
    closing = re.search(r'Trying to close tag "(.*?)"', problem)
    if closing:
        name = closing[1]
        open_one = re.search(r'last open tag is "(.*?)"', problem)
        if open_one:
            return (
                f"{{{{/{name}}}}} closes a section, but the open one is {{{{#{open_one[1]}}}}}: "
                f"close that first with {{{{/{open_one[1]}}}}}"
            )
        return f"{{{{/{name}}}}} closes a section that was never opened: remove it"
    if problem.startswith("unclosed tag"):
        return "a tag is opened with {{ but never closed with }}"
    if problem.startswith("empty tag"):
        return "an empty {{}} tag: write the input's name, e.g. {{text}}"
    return "invalid mustache template: " + " ".join(problem.split())


def too_many_aliases(limit: int) -> str:
    return (
        f"too many repeated anchors/aliases: with its aliases (*name) and << merges expanded, "
        f"the file would hold more than {limit:,} values; refer to anchors less often"
    )


def too_many_values(limit: int) -> str:
    return f"more than {limit:,} values: chain files hold hundreds; make it smaller"


def alias_loop() -> str:
    return "an alias inside its own anchor (&name … *name): the value would contain itself"


def bad_scalar(value: str, problem: str) -> str:
    """A value PyYAML reads as a date or number but cannot build (``2023-02-30``)."""
    return f"cannot read {_piece(value)!r} ({problem}): quote it to keep it as text"


def too_big(size: int, limit: int, grew: bool = False) -> str:
    shown, most = _size(size), _size(limit)
    if shown == most and not grew:
        shown, most = f"{size:,} bytes", f"{limit:,} bytes"
    return (
        f"the file is {'more than ' if grew else ''}{shown}; chain files are at most {most}: "
        "make it smaller, or raise CHAINSERVE_MAX_CHAIN_FILE_BYTES"
    )


def not_regular(kind: str) -> str:
    return (
        f"not a regular file ({kind}): only regular files are chain files; remove it or rename "
        "it so it does not end in .yaml"
    )


def symlink_loop() -> str:
    return "a symlink loop (it never reaches a file): point it at a chain file, or remove it"


def dangling_symlink(target: str) -> str:
    return f"a symlink to {target}, which does not exist: point it at a chain file, or remove it"


def outside_folder(target: Any) -> str:
    return (
        f"a symlink to {target}, outside the chains folder: chain files must be inside it (the "
        "folder alone decides what is served, and no other file's text shows in errors and "
        "prompts); copy the file in, or link to one inside the folder"
    )


def not_utf8(byte: int) -> str:
    return f"not UTF-8 text (byte 0x{byte:02x}): save the file as UTF-8"


def cannot_read(exc: OSError) -> str:
    return f"cannot read: {exc.strerror or exc}"


def _size(size: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{size} bytes"


def _hint(key: Any, aliases: dict[str, str]) -> str:
    return f" (did you mean {aliases[key]!r}?)" if key in aliases else ""


def _is_message_text(parts: tuple[Any, ...]) -> bool:
    return len(parts) == 4 and parts[:2] == ("prompt", "messages") and parts[3] in MESSAGE_KEYS


def _is_flow_mapping(node: Any) -> bool:
    return isinstance(node, yaml.MappingNode) and bool(node.flow_style)


def _empty_message(node: Any) -> str:
    """``- user:`` with nothing after it reads as a message without its text."""
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1:
        return ""
    key, value = node.value[0]
    if key.value in MESSAGE_KEYS and value.tag == "tag:yaml.org,2002:null":
        return f"{key.value!r} has no text: write it after the colon, e.g. - {key.value}: Hello"
    return ""


def _found(node: Any) -> str:
    """What was there instead, in a few words."""
    if isinstance(node, yaml.MappingNode):
        return ", not a mapping"
    if isinstance(node, yaml.SequenceNode):
        return ", not a list"
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:null":
            return ", not empty"
        if node.tag == "tag:yaml.org,2002:str":
            return f", not {_piece(node.value)!r}"
        return f", not {_piece(node.value)}"
    return ""


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _piece(text: str, limit: int = 40) -> str:
    """The start of ``text`` on one line: an error is one line, and a value can be huge."""
    text = " ".join(text[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _quoted(text: str) -> str:
    return '"' + _piece(text, 60).replace("\\", "\\\\").replace('"', '\\"') + '"'
