"""An input's ``pattern``: one regular expression, checked the same way here and by clients.

The pattern is published as it is written in the input's JSON Schema, where validators read it
as an ECMA-262 (JavaScript) regular expression, unanchored. So that a value the server accepts
is one a client's validator accepts too, a pattern may only use syntax both dialects share, and
it is compiled for Python with JavaScript's meanings:

- ``$`` is the end of the text (Python's ``$`` also matches before a final newline);
- ``.`` matches no line terminator (``\\n``, ``\\r``, U+2028, U+2029);
- ``\\d``, ``\\w`` and ``\\b`` are ASCII (``re.ASCII``), ``\\s`` is JavaScript's whitespace;
- Python-only syntax (``(?P<name>``, inline flags ``(?i)``, ``(?#``, atomic groups, possessive
  quantifiers, ``\\A``, ``\\Z``, ``{,n}``, ``[]``) is refused, with what to write instead.

Matching is :meth:`re.Pattern.search`, unanchored like JSON Schema: anchor with ``^…$``.
"""

import re

# JavaScript's \s: its WhiteSpace and LineTerminator characters.
_JS_SPACE = "\\t\\n\\v\\f\\r \\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000\\ufeff"
_JS_DOT = "[^\\n\\r\\u2028\\u2029]"
_GROUPS = ("(?:", "(?=", "(?!", "(?<=", "(?<!")
_PYTHON_ONLY_ESCAPES = {
    "A": "use ^ for the start",
    "Z": "use $ for the end",
    "z": "use $ for the end",
    "G": "it has no equivalent",
}


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled with JavaScript's meanings; ``ValueError`` saying what to change
    for syntax the two dialects do not share, or a pattern that is not a regular expression."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            pair = pattern[i : i + 2]
            letter = pair[1:]
            if letter in _PYTHON_ONLY_ESCAPES:
                raise ValueError(f"{pair} is Python-only; {_PYTHON_ONLY_ESCAPES[letter]}")
            if letter == "s":
                out.append(_JS_SPACE if in_class else f"[{_JS_SPACE}]")
            elif letter == "S":
                if in_class:
                    raise ValueError("\\S inside [...] reads differently in JavaScript; list it")
                out.append(f"[^{_JS_SPACE}]")
            else:
                out.append(pair)
            i += 2
            continue
        if in_class:
            in_class = char != "]"
            out.append(char)
        elif char == "[":
            rest = pattern[i + 1 : i + 3]
            if rest.startswith("]") or rest == "^]":
                raise ValueError("[] and [^] read differently in Python; escape the ] as \\]")
            in_class = True
            out.append(char)
        elif char == "(" and pattern.startswith("(?", i):
            if not pattern.startswith(_GROUPS, i):
                raise ValueError(
                    f"{pattern[i : i + 3]!s}… is Python-only syntax; use (...), (?:...), "
                    "lookarounds, and write flags out (e.g. [Aa] for case)"
                )
            out.append(char)
        elif char in "*+?}" and pattern.startswith("+", i + 1):
            raise ValueError(f"{char}+ (a possessive quantifier) is Python-only; drop the +")
        elif char == "{" and pattern.startswith(",", i + 1):
            raise ValueError("{,n} means a count only in Python; write {0,n}")
        elif char == "$":
            out.append("\\Z")  # the very end, as JavaScript's $ without the m flag
        elif char == ".":
            out.append(_JS_DOT)
        else:
            out.append(char)
        i += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None
