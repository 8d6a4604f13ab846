"""Load-time checks of a chain file's tests: unique names, valid inputs, each check's line.

Called by the loader next to its template checks, so ``chainserve validate``, server start and
``chainserve test`` all refuse a bad test with ``file:line``. Inputs are validated exactly as
request bodies are (:class:`service.chains.inputs.ChainInputs`, strictly), so an example that loads is
one the HTTP API would accept.
"""

import difflib
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service.chains.images import read_image_file
from service.chains.inputs import ChainInputs
from service.chains.spec import ChainSpec
from service.chaintests.spec import ChainTest, TextChecks
from service.runs import errors
from service.settings import Settings

if TYPE_CHECKING:
    from service.chains.loader import ChainFileError, _Locator


def check_tests(spec: ChainSpec, locate: "_Locator") -> list["ChainFileError"]:
    """Problems with ``spec.tests``; records every test's and check's source line on the way."""
    if not spec.tests:
        return []
    problems: list[ChainFileError] = []
    # The limits of a default server: the runner validates again with the actual settings.
    inputs = ChainInputs(
        spec,
        Settings.model_fields["max_input_length"].default,
        Settings.model_fields["max_batch_size"].default,
        Settings.model_fields["max_image_bytes"].default,
    )
    first_named: dict[str, int] = {}
    for index, test in enumerate(spec.tests):
        where = ("tests", index)
        test._line = locate.error(where, "").line
        if test.name in first_named:
            problems.append(
                locate.error(
                    (*where, "name"),
                    f"test name {test.name!r} is already used by tests[{first_named[test.name]}]; "
                    "names are unique within a file",
                )
            )
        first_named.setdefault(test.name, index)
        unreadable = _image_files(spec, test, where, locate)  # said once: not also as input
        problems.extend(unreadable or _input_problems(spec, inputs, test, where, locate))
        _record_lines(test, where, locate)
    return problems


def _input_problems(
    spec: ChainSpec,
    inputs: ChainInputs,
    test: ChainTest,
    where: tuple[Any, ...],
    locate: "_Locator",
) -> list["ChainFileError"]:
    try:
        inputs.model.model_validate(test.inputs, strict=True)
    except ValidationError as exc:
        # invalid_input words each problem as the HTTP API does ("required; add it").
        worded = errors.invalid_input(exc).errors or []
        problems = []
        for raw, api in zip(exc.errors(include_url=False), worded, strict=True):
            loc = (*where, "inputs", *raw["loc"])
            message = api["message"] + _hint(raw, spec)
            # A missing input has no line of its own: its mapping's key (inputs:) has one.
            line_of = loc[:-1] if raw["type"] == "missing" else loc
            # The locator names the deepest key present; a missing input is named all the same.
            problems.append(replace(locate.error(line_of, message), where=_dotted(loc)))
        return sorted(problems, key=lambda problem: problem.line)
    return []


def _image_files(
    spec: ChainSpec, test: ChainTest, where: tuple[Any, ...], locate: "_Locator"
) -> list["ChainFileError"]:
    """An image input given as a file name (``photo: cat.png``) is read from beside the chain
    file and replaced by its data URL, so the test then runs as an HTTP request would."""
    problems = []
    for name, value in test.inputs.items():
        kind = spec.inputs[name].type if name in spec.inputs else None
        if kind != "image" or not isinstance(value, str) or value.startswith("data:"):
            continue
        try:
            test.inputs[name] = read_image_file(
                locate.path.parent, value, Settings.model_fields["max_image_bytes"].default
            )
        except ValueError as exc:
            problems.append(locate.error((*where, "inputs", name), f"{exc}; {_IMAGE_FILE}"))
    return problems


_IMAGE_FILE = "give a data URL, or the name of an image file beside the chain file"


def _hint(error: Any, spec: ChainSpec) -> str:
    value = error.get("input")
    if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
        close = difflib.get_close_matches(str(error["loc"][0]), list(spec.inputs), n=1)
        return f" (did you mean {close[0]!r}?)" if close else ""
    # YAML reads `text: 5` and `text: yes` as a number and a boolean, not as text.
    if error["type"] == "string_type" and isinstance(value, int | float | bool):
        kind = "boolean" if isinstance(value, bool) else "number"
        return f"; YAML reads {value!r} as a {kind}: put it in quotes"
    return ""


def _record_lines(test: ChainTest, where: tuple[Any, ...], locate: "_Locator") -> None:
    blocks: list[tuple[tuple[Any, ...], TextChecks | None]] = [
        ((*where, "prompt"), test.prompt),
        ((*where, "output"), test.output),
        ((*where, "live", "output"), test.live.output if test.live else None),
    ]
    for loc, checks in blocks:
        if checks is None:
            continue
        for name in checks.given():
            checks._lines[name] = locate.error((*loc, name), "").line
            value = getattr(checks, name)
            if isinstance(value, list):
                for item in range(len(value)):
                    line = locate.error((*loc, name, item), "").line
                    checks._lines[f"{name}[{item}]"] = line


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
