"""What ``chainserve test`` shows: progress while tests run, then one line per failure, then
the summary.

Progress on a terminal is one line rewritten in place; in a log (CI, a pipe) it is one character
per test, as pytest does: ``.`` passed, ``F`` failed, ``E`` error. A failure reads
``chains/x.yaml:LINE: chain › test: expected …, got …`` so editors and CI can jump to the check.
"""

from typing import TextIO

from service.chains.loader import display_path
from service.chaintests.runner import Outcome

_MARKS = {"passed": ".", "failed": "F", "error": "E"}
_MARKS_PER_LINE = 80


class Counts:
    def __init__(self) -> None:
        self.passed = self.failed = self.errors = 0

    def add(self, outcome: Outcome) -> None:
        if outcome.status == "passed":
            self.passed += 1
        elif outcome.status == "failed":
            self.failed += 1
        else:
            self.errors += 1

    @property
    def done(self) -> int:
        return self.passed + self.failed + self.errors

    def __str__(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed"
        if self.errors:
            text += f", {_plural(self.errors, 'error')}"
        return text


class Progress:
    """Tests as they end: a live counter on a terminal, one mark per test otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.counts = Counts()
        self._stream = stream
        self._tty = stream.isatty()

    def add(self, outcome: Outcome) -> None:
        self.counts.add(outcome)
        if self._tty:
            # \r and "erase to end of line": the line is rewritten, never scrolls.
            self._stream.write(f"\r\x1b[K{self.counts.done}/{self.total} tests: {self.counts}")
        else:
            self._stream.write(_MARKS[outcome.status])
            if self.counts.done % _MARKS_PER_LINE == 0 and self.counts.done < self.total:
                self._stream.write("\n")
        self._stream.flush()

    def finish(self) -> None:
        if self.counts.done:
            self._stream.write("\n")
            self._stream.flush()


def failure_lines(outcome: Outcome) -> list[str]:
    """``file:line: chain › test: message`` for each failure of an outcome."""
    where = display_path(outcome.case.path)
    return [f"{where}:{f.line}: {outcome.case.id}: {f.message}" for f in outcome.failures]


def live_note(outcomes: list[Outcome]) -> str | None:
    """Why some checks did not run, if any did not."""
    skipped = sum(outcome.live_checks_not_run for outcome in outcomes)
    if not skipped:
        return None
    return f"{_plural(skipped, 'live-only check')} not run; use --live"


def summary(counts: Counts, seconds: float) -> str:
    return f"{counts} in {seconds:.1f} s"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")
