"""The assertions of a chain test: one text against one block of checks.

Every failure is one line, ``expected <what>, got <what came>``: texts are shown on one line
(newlines as ↵) and, when long, cut to the part that explains the failure — where an unwanted
substring occurs, where two texts first differ, where a length limit is passed, where JSON stops
parsing, or the part most like a substring that is missing.
"""

import difflib
import json
import re
from dataclasses import dataclass
from typing import Any

from jsonschema.exceptions import best_match
from jsonschema.validators import validator_for

from service.chaintests.spec import TextChecks, as_list

WIDTH = 72  # characters of a text shown in a failure
_ONE_LINE = str.maketrans({"\n": "↵", "\r": "␍"})  # one character each: positions still hold


@dataclass(frozen=True)
class Failure:
    """A check that did not hold, with the source line of the check."""

    line: int
    message: str


def run_checks(checks: TextChecks, text: str, subject: str) -> list[Failure]:
    """Every check of ``checks`` on ``text``; ``subject`` ("prompt", "output") names the text."""
    failures: list[Failure] = []
    for name in checks.given():
        value = getattr(checks, name)
        items = as_list(value) if name in ("contains", "not_contains", "regex") else [value]
        for index, item in enumerate(items):
            message = _CHECKS[name](item, text, subject)
            if message is not None:
                line = checks.line(name, index if isinstance(value, list) else None)
                failures.append(Failure(line, message))
    return failures


def _contains(needle: str, text: str, subject: str) -> str | None:
    if needle in text:
        return None
    # Show the part of the text most like what was expected: a near miss shows itself.
    match = difflib.SequenceMatcher(None, text, needle, autojunk=False).find_longest_match()
    got = excerpt(text, match.a, match.a + match.size) if match.size > 1 else excerpt(text)
    return f"expected {subject} to contain {excerpt(needle)}, got {got}"


def _not_contains(needle: str, text: str, subject: str) -> str | None:
    at = text.find(needle)
    if at < 0:
        return None
    got = excerpt(text, at, at + len(needle))
    return f"expected {subject} not to contain {excerpt(needle)}, got {got}"


def _regex(pattern: str, text: str, subject: str) -> str | None:
    if re.search(pattern, text):
        return None
    return f"expected {subject} to match regex /{pattern}/, got {excerpt(text)}"


def _equals(expected: str, text: str, subject: str) -> str | None:
    if text == expected:
        return None
    differ = next(
        (i for i, (a, b) in enumerate(zip(expected, text, strict=False)) if a != b),
        min(len(expected), len(text)),
    )
    return (
        f"expected {subject} to equal {excerpt(expected, differ)}, got {excerpt(text, differ)}"
        f" (they differ at character {differ + 1})"
    )


def _json(_: bool, text: str, subject: str) -> str | None:
    _, problem = _parse_json(text, subject)
    return problem


def _json_schema(schema: dict[str, Any], text: str, subject: str) -> str | None:
    data, problem = _parse_json(text, subject)
    if problem is not None:
        return problem
    error = best_match(validator_for(schema)(schema).iter_errors(data))
    if error is None:
        return None
    return (
        f"expected {subject} to match the JSON Schema, got {excerpt(text)}"
        f" ({error.json_path}: {error.message})"
    )


def _parse_json(text: str, subject: str) -> tuple[Any, str | None]:
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        got = excerpt(text, exc.pos)
        return (
            None,
            f"expected {subject} to be JSON, got {got} ({exc.msg} at character {exc.pos + 1})",
        )


def _min_length(least: int, text: str, subject: str) -> str | None:
    if len(text) >= least:
        return None
    return f"expected {subject} of at least {least} characters, got {len(text)}: {excerpt(text)}"


def _max_length(most: int, text: str, subject: str) -> str | None:
    if len(text) <= most:
        return None
    return (
        f"expected {subject} of at most {most} characters, got {len(text)}: "
        f"{excerpt(text, most)}"  # where it goes past the limit
    )


_CHECKS: dict[str, Any] = {
    "contains": _contains,
    "not_contains": _not_contains,
    "regex": _regex,
    "equals": _equals,
    "json": _json,
    "json_schema": _json_schema,
    "min_length": _min_length,
    "max_length": _max_length,
}


def excerpt(text: str, start: int = 0, end: int | None = None, width: int = WIDTH) -> str:
    """``text`` quoted on one line; if longer than ``width``, the part around ``start:end``."""
    flat = text.translate(_ONE_LINE)
    if len(flat) <= width:
        return f'"{flat}"'
    end = start if end is None else end
    # Centre the span in the window (or start with it, when it is wider than the window).
    low = max(0, start - max(width - (end - start), 0) // 2)
    high = min(len(flat), low + width)
    low = max(0, high - width)
    before = "…" if low > 0 else ""
    after = "…" if high < len(flat) else ""
    return f'"{before}{flat[low:high]}{after}"'
