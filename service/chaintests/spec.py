"""The ``tests:`` section of a chain file: strict models, published in the chain file schema.

Kept free of the rest of the service (``service.chains.spec`` imports it), so it has its own strict
base model. Bad regular expressions and JSON Schemas are refused here, while the file loads,
so they are ``file:line`` errors rather than failures at run time.
"""

import re
import warnings
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

TextOrList = str | list[str] | None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ``json`` is the check's name in chain files, and BaseModel has a deprecated ``json()`` method
# that a field of that name shadows; an alias would make the loader's "did you mean" hints
# suggest a key that chain files cannot use, so the field keeps the name and the warning is off.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "json"', category=UserWarning)

    class TextChecks(_Strict):
        """Checks on one text (the rendered prompt, or the model's output); all given must pass."""

        contains: TextOrList = Field(None, description="Substring(s) the text must contain.")
        not_contains: TextOrList = Field(
            None, description="Substring(s) the text must not contain."
        )
        regex: TextOrList = Field(
            None, description="Python regular expression(s) that must match (re.search)."
        )
        equals: str | None = Field(None, description="The exact text.")
        json: Literal[True] | None = Field(  # type: ignore[assignment]
            None, description="true: the text parses as JSON."
        )
        json_schema: dict[str, Any] | None = Field(
            None, description="A JSON Schema: the text parses as JSON and validates against it."
        )
        min_length: int | None = Field(None, ge=0, description="Fewest characters.")
        max_length: int | None = Field(None, ge=0, description="Most characters.")

        _lines: dict[str, int] = PrivateAttr(default_factory=dict)
        """Source line of each check (``"contains"``, or ``"contains[1]"`` for a list item),
        set while the file loads, so a failure names the line of the check that failed."""

        @field_validator("regex")
        @classmethod
        def _compiles(cls, value: TextOrList) -> TextOrList:
            for pattern in as_list(value):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
            return value

        @field_validator("json_schema")
        @classmethod
        def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
            if value is not None:
                # Imported here: jsonschema costs 70 ms, and the server's cold start loads
                # this module whether or not any chain has a json_schema check.
                import jsonschema
                from jsonschema.validators import validator_for

                try:
                    validator_for(value).check_schema(value)
                except jsonschema.SchemaError as exc:
                    where = "".join(f"[{part!r}]" for part in exc.path)
                    raise ValueError(
                        f"not a valid JSON Schema: {exc.message}"
                        + (f" (at json_schema{where})" if where else "")
                    ) from None
            return value

        def given(self) -> list[str]:
            """The checks this block sets, in the order they are run."""
            return [name for name in type(self).model_fields if getattr(self, name) is not None]

        def line(self, check: str, index: int | None = None) -> int:
            """The source line of a check (of one item, for a list); 0 if not loaded from a file."""
            if index is not None and f"{check}[{index}]" in self._lines:
                return self._lines[f"{check}[{index}]"]
            return self._lines.get(check, 0)


class LiveChecks(_Strict):
    """Checks that only make sense against a real model; run with ``chainserve test --live``."""

    output: TextChecks | None = Field(None, description="Checks on the model's output text.")


class ChainTest(_Strict):
    """One example: inputs, and what the prompt and the output must look like."""

    name: str = Field(min_length=1, description="Unique within the chain file.")
    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="The chain's inputs, as in an invoke body's \"input\"; a messages input "
        'is a list of {"role": ..., "content": ...}; an image input a data URL or the name of '
        "an image file beside the chain file.",
    )
    prompt: TextChecks | None = Field(
        None, description='Checks on the rendered prompt, as "role: content" lines.'
    )
    output: TextChecks | None = Field(None, description="Checks on the model's output text.")
    live: LiveChecks | None = Field(
        None, description="Checks run only with --live (against Bedrock, not the emulator)."
    )

    _line: int = PrivateAttr(default=0)
    """The line the test starts on (where errors of the whole test are reported)."""

    def calls_model(self, live: bool) -> bool:
        """Whether running it needs the model: not when every check is on the prompt."""
        if self.output or (live and self.live and self.live.output):
            return True
        return self.prompt is None  # no checks at all: the test is that the chain runs

    def live_checks(self) -> int:
        """How many checks ``live:`` holds (the count said when they are not run)."""
        if self.live is None or self.live.output is None:
            return 0
        return len(self.live.output.given())


def as_list(value: TextOrList) -> list[str]:
    """A check's value that may be one string or a list, as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else value
