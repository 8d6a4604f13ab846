"""The prompt's templates at load time: the inputs they use, and the syntax chain files allow.

What passes here renders at every request, so syntax that would fail or quietly misrender then
is refused now, with the message's line:

- f-string: plain ``{name}`` only. A format spec or conversion turns one character of input into
  megabytes (``{text:>900000000}``) or into a Python repr (``{text!r}``).
- mustache: variables, and sections (``{{#name}}…{{/name}}``, ``{{^name}}…{{/name}}``) over an
  input — rendered when it is true, non-empty or non-zero — with the variables inside them
  counted as used. Partials have nothing to include (``{{> x}}`` renders as nothing), a
  set-delimiter tag would be rewritten into a variable by :mod:`service.chains.runnable`, and
  inputs are plain values with no fields (``{{text.x}}`` renders as nothing).
"""

from string import Formatter
from typing import TYPE_CHECKING, Any

from langchain_core.prompts.string import get_template_variables
from langchain_core.utils.mustache import ChevronError, tokenize

from service.chains import error_texts as texts
from service.chains.spec import ChainSpec, MessageSpec

if TYPE_CHECKING:
    from service.chains.loader import ChainFileError, _Locator


class TemplateProblem(ValueError):
    """A template chain files refuse; the text says what to write instead."""


# The items that place an input in the prompt: the input type each needs, and the fix said.
_PLACES = {
    "placeholder": ("messages", ""),
    "image": ("image", "; declare it with type: image, or place text with a user message"),
}


def check_variables(spec: ChainSpec, locate: "_Locator") -> list["ChainFileError"]:
    """The prompt's template variables must be exactly the declared inputs."""
    errors: list[ChainFileError] = []
    used: set[str] = set()
    partial = False  # a template could not be read in full: which inputs it uses is unknown
    declared = spec.inputs
    for index, message in enumerate(spec.prompt.messages):
        where = ("prompt", "messages", index)
        if message.role in _PLACES:  # an item that places one input: placeholder, image
            names = {message.text}
            needed, fix = _PLACES[message.role]
            input_spec = declared.get(message.text)
            if input_spec is not None and input_spec.type != needed:
                errors.append(
                    locate.error(
                        where,
                        f"{message.role} {message.text!r} needs an input of type {needed}, "
                        f"but inputs.{message.text} is {input_spec.type}{fix}",
                    )
                )
        else:
            try:
                names = template_variables(message.text, spec.prompt.format)
            except TemplateProblem as exc:
                errors.append(locate.error(where, str(exc)))
                partial = True
                continue
            except (ValueError, KeyError) as exc:
                problem = texts.invalid_template(spec.prompt.format, str(exc))
                errors.append(locate.error(where, problem))
                partial = True
                continue
            if spec.prompt.format == "f-string":
                bad = sorted(name for name in names if not name.isidentifier())
                errors.extend(locate.error(where, texts.template_name(name)) for name in bad)
                partial = partial or bool(bad)
                names -= set(bad)
            errors.extend(_messages_inputs_in_text(spec, message, names, locate, where))
        for name in sorted(names - declared.keys()):
            hint = texts.did_you_mean(name, declared)
            problem = (
                f"'- image: {name}' names no declared input{hint}; declare {name} under "
                "inputs with type: image, or fix the name"
                if message.role == "image"
                else f"template uses {_show_var(spec, name)} but no input {name!r} is "
                f"declared{hint}; declare it under inputs or fix the name"
            )
            errors.append(locate.error(where, problem))
        used |= names
    for name in sorted(declared.keys() - used) if not partial else []:
        how = (
            f"place it with '- image: {name}' in the prompt's messages"
            if declared[name].type == "image"
            else f"use {_show_var(spec, name)} in a message"
        )
        errors.append(
            locate.error(
                ("inputs", name),
                f"input {name!r} is declared but the prompt never uses it; {how} or remove the input",
            )
        )
    return errors


def template_variables(text: str, fmt: str) -> set[str]:
    """The variables a template uses; :class:`TemplateProblem` (or LangChain's ``ValueError``)
    for a template chain files refuse."""
    if fmt == "f-string":
        for _, name, spec, conversion in Formatter().parse(text):
            # Only for a variable's name: {"a": 1} is literal braces, worded by the caller.
            if name is not None and name.isidentifier() and (spec or conversion):
                raise TemplateProblem(texts.format_spec(name, spec or "", conversion))
        return set(get_template_variables(text, "f-string"))
    return _mustache_variables(text)


def _mustache_variables(text: str) -> set[str]:
    """Every variable and section name, at any depth: LangChain's own list has only those
    outside sections, which would call an input used only inside one unused."""
    names: set[str] = set()
    depth = 0
    try:
        for kind, key in tokenize(text):
            if kind in ("partial", "set delimiter"):
                raise TemplateProblem(texts.mustache_tag(kind, key))
            if kind == "end":
                depth -= 1
            elif kind in ("variable", "no escape", "section", "inverted section"):
                if "." in key and not (key == "." and depth > 0):  # {{.}}: a section's value
                    raise TemplateProblem(texts.mustache_tag(kind, key))
                if key != ".":
                    names.add(key)
                if kind in ("section", "inverted section"):
                    depth += 1
    except ChevronError as exc:
        raise TemplateProblem(texts.invalid_mustache(str(exc))) from None
    return names


def _messages_inputs_in_text(
    spec: ChainSpec,
    message: MessageSpec,
    names: set[str],
    locate: "_Locator",
    where: tuple[Any, ...],
) -> list["ChainFileError"]:
    problems = []
    for name in sorted(names):
        kind = spec.inputs[name].type if name in spec.inputs else None
        if kind == "messages":
            problems.append(
                f"input {name!r} is a list of messages; splice it in with "
                f"'- placeholder: {name}' instead of {_show_var(spec, name)} in a "
                f"{message.role} message"
            )
        elif kind == "image":
            # In text it would be megabytes of base64 that the model reads as text.
            problems.append(
                f"input {name!r} is an image; place it with '- image: {name}' (an item of "
                f"its own, next to the user text) instead of {_show_var(spec, name)} in a "
                f"{message.role} message"
            )
    return [locate.error(where, problem) for problem in problems]


def _show_var(spec: ChainSpec, name: str) -> str:
    return "{" + name + "}" if spec.prompt.format == "f-string" else "{{" + name + "}}"
