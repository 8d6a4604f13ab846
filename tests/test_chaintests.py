"""Chain tests (the ``tests:`` section of chain files) and ``chainserve test``.

The command runs as users run it: a real process, the built-in emulator, or (``--live``) an
emulator of this test's own reached through CHAINSERVE_BEDROCK_ENDPOINT_URL.
"""

import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest

from service.chains.loader import ChainFileErrors, load_file
from service.chaintests.checks import excerpt, run_checks
from service.chaintests.report import Progress
from service.chaintests.spec import TextChecks
from service.emulator.server import Emulator
from service.emulator.state import Fault
from tests.conftest import EXAMPLE_CHAINS

CHAINSERVE = [sys.executable, "-m", "service"]
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

ECHO = f"""\
model:
  id: {MODEL}
prompt:
  messages:
    - system: Be brief.
    - user: "Say {{text}}"
inputs:
  text:
    type: string
"""

CHECKS = (
    ECHO
    + r"""tests:
  - name: every check passes
    inputs:
      text: hello
    prompt:
      contains: [Say hello, "system: Be brief."]
      not_contains: goodbye
      regex: "^system: Be brief\\.\nuser: Say hello$"
      equals: "system: Be brief.\nuser: Say hello"
      min_length: 30
      max_length: 40
    output:
      contains: "[emulator] anthropic.claude-3-haiku-20240307-v1:0 received:"
      not_contains: goodbye
      regex: "user: Say hello$"
      equals: "[emulator] anthropic.claude-3-haiku-20240307-v1:0 received:\nsystem: Be brief.\nuser: Say hello"
      min_length: 10
      max_length: 200
  - name: every check fails
    inputs:
      text: hello world
    prompt:
      contains: Say goodbye            # CONTAINS
      not_contains:
        - nothing
        - Be brief                     # NOT_CONTAINS
      regex: x{3}                      # REGEX
      equals: "system: Be brief.\nuser: Say hello there"   # EQUALS
      min_length: 1000                 # MIN_LENGTH
      max_length: 10                   # MAX_LENGTH
    output:
      json: true                       # JSON
"""
)

LIVE = (
    ECHO
    + """tests:
  - name: throttled                    # THROTTLED
    inputs:
      text: a
  - name: prompt only
    inputs:
      text: b
    prompt:
      contains: Say b
  - name: live check
    inputs:
      text: c
    live:
      output:
        not_contains: "[emulator]"     # LIVE_CHECK
"""
)


def chainserve(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHAINSERVE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def chains(tmp_path: Path, **files: str) -> Path:
    """A folder ``chains`` in ``tmp_path`` with the given files (name without .yaml: text)."""
    folder = tmp_path / "chains"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def line_of(text: str, marker: str) -> int:
    """The line of the file text that holds ``# MARKER`` (or the marker text itself)."""
    [line] = [i for i, row in enumerate(text.splitlines(), 1) if marker in row]
    return line


def test_every_check_kind_passes_and_fails_with_file_and_line(tmp_path: Path) -> None:
    chains(tmp_path, echo=CHECKS)
    result = chainserve("test", "chains", "--concurrency", "1", "--junit", "out.xml", cwd=tmp_path)
    assert result.returncode == 1, result.stderr

    def at(marker: str) -> str:
        return f"chains/echo.yaml:{line_of(CHECKS, '# ' + marker)}: echo › every check fails: "

    prompt = '"system: Be brief.↵user: Say hello world"'
    output = f'"[emulator] {MODEL} received:↵system: Be b…"'
    expected = [
        at("CONTAINS") + f'expected prompt to contain "Say goodbye", got {prompt}',
        at("NOT_CONTAINS") + f'expected prompt not to contain "Be brief", got {prompt}',
        at("REGEX") + f"expected prompt to match regex /x{{3}}/, got {prompt}",
        at("EQUALS") + 'expected prompt to equal "system: Be brief.↵user: Say hello there", '
        f"got {prompt} (they differ at character 35)",
        at("MIN_LENGTH") + f"expected prompt of at least 1000 characters, got 39: {prompt}",
        at("MAX_LENGTH") + f"expected prompt of at most 10 characters, got 39: {prompt}",
        at("JSON") + f"expected output to be JSON, got {output} (Expecting value at character 2)",
    ]
    lines = result.stdout.splitlines()
    assert lines == [".F", *expected, "1 passed, 1 failed in " + lines[-1].split(" in ")[1]]
    assert lines[-1].endswith(" s")
    assert "answered by the built-in Bedrock emulator" in result.stderr

    # The same outcome in JUnit XML, for CI.
    root = ET.parse(tmp_path / "out.xml").getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    [suite] = root.findall("testsuite")
    assert (suite.get("name"), suite.get("tests"), suite.get("failures")) == ("echo", "2", "1")
    passed, failed = suite.findall("testcase")
    assert (passed.get("classname"), passed.get("name")) == ("echo", "every check passes")
    assert passed.find("failure") is None and float(passed.get("time", "x")) >= 0
    failure = failed.find("failure")
    assert failed.get("name") == "every check fails" and failure is not None
    assert failure.get("message") == expected[0].split("every check fails: ")[1]
    assert (failure.text or "").splitlines() == expected


def test_json_checks() -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    checks = TextChecks.model_validate({"json": True, "json_schema": schema})
    assert run_checks(checks, '{"age": 3}', "output") == []
    [not_json, also_not_json] = run_checks(checks, "age: 3", "output")
    assert not_json.message == (
        'expected output to be JSON, got "age: 3" (Expecting value at character 1)'
    )
    assert also_not_json.message == not_json.message
    [invalid] = run_checks(checks, '{"age": "x"}', "output")
    assert invalid.message == (
        'expected output to match the JSON Schema, got "{"age": "x"}"'
        " ($.age: 'x' is not of type 'integer')"
    )


def test_long_texts_are_cut_around_the_relevant_part() -> None:
    text = "A" * 300 + "\nin 3 sentences:\n" + "B" * 300
    [missing] = run_checks(TextChecks(contains="in 5 sentences"), text, "prompt")
    # The near miss is shown, on one line, cut on both sides.
    got = missing.message.split(", got ")[1]
    assert "↵in 3 sentences:↵" in got and got.startswith('"…A') and got.endswith('B…"')
    assert len(got) < 90
    [present] = run_checks(TextChecks(not_contains="sentences"), text, "output")
    assert "in 3 sentences" in present.message and "\n" not in present.message
    [long] = run_checks(TextChecks(max_length=305), text, "output")
    assert long.message.startswith("expected output of at most 305 characters, got 617: ")
    assert "AAA↵in 3" in long.message  # where it goes past the limit
    assert excerpt("short\ntext") == '"short↵text"'


def test_load_errors_name_file_and_line(tmp_path: Path) -> None:
    bad_checks = ECHO + dedent(
        """\
        tests:
          - name: bad regex
            output:
              regex: ["ok", "(unclosed"]
          - name: bad schema
            output:
              json_schema: {type: objekt}
        """
    )
    bad_tests = ECHO + dedent(
        """\
        tests:
          - name: first
            inputs:
              txt: hello
          - name: first
            inputs:
              text: 5
        """
    )
    good = ECHO + "tests:\n  - name: good\n    inputs:\n      text: hi\n"
    chains(tmp_path, checks=bad_checks, tests=bad_tests, good=good)
    result = chainserve("test", "chains", cwd=tmp_path)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if not line.startswith("chainserve")]
    assert errors == [
        "chains/checks.yaml:13: tests[0].output.regex: invalid regular expression "
        "'(unclosed': missing ), unterminated subpattern at position 0",
        "chains/checks.yaml:16: tests[1].output.json_schema: not a valid JSON Schema: "
        "'objekt' is not valid under any of the given schemas (at json_schema['type'])",
        "chains/tests.yaml:12: tests[0].inputs.text: required; add it",
        "chains/tests.yaml:13: tests[0].inputs.txt: unknown field; remove it "
        "(did you mean 'text'?)",
        "chains/tests.yaml:14: tests[1].name: test name 'first' is already used by tests[0]; "
        "names are unique within a file",
        "chains/tests.yaml:16: tests[1].inputs.text: input should be a valid string; "
        "YAML reads 5 as a number: put it in quotes",
    ]
    # The file that loads is tested all the same; the others make the run fail.
    marks, not_loaded, summary = result.stdout.splitlines()
    assert (marks, not_loaded) == (".", "2 chain files did not load (the errors are on stderr)")
    assert summary.startswith("1 passed, 0 failed in ")

    (tmp_path / "chains" / "good.yaml").unlink()
    nothing = chainserve("test", "chains", cwd=tmp_path)
    assert nothing.returncode == 1 and nothing.stdout == ""
    assert nothing.stderr.splitlines()[-1] == (
        "chainserve test: no tests run: chain files in chains did not load"
    )


def test_messages_inputs_take_the_http_form(tmp_path: Path) -> None:
    chat = (EXAMPLE_CHAINS / "chat.yaml").read_text().split("tests:")[0]
    path = tmp_path / "chat.yaml"
    text = chat + dedent(
        """\
        tests:
          - name: roles
            inputs:
              question: Hi
              history:
                - {role: user, content: a}
                - {role: robot, content: b}    # ROBOT
        """
    )
    path.write_text(text)
    with pytest.raises(ChainFileErrors) as caught:
        load_file(path)
    [error] = [str(error) for error in caught.value.errors]
    assert error.endswith(
        f"chat.yaml:{line_of(text, '# ROBOT')}: tests[0].inputs.history[1].role: "
        "must be one of 'system', 'user', 'assistant', 'human' or 'ai'"
    )
    path.write_text(path.read_text().replace("robot", "assistant"))
    assert load_file(path).tests[0].inputs["history"][1]["role"] == "assistant"


def test_k_selects_tests_by_chain_and_name(tmp_path: Path) -> None:
    result = chainserve("test", str(EXAMPLE_CHAINS), "-k", "TRANSLATE > the language")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("1 passed, 0 failed in ")

    none = chainserve("test", str(EXAMPLE_CHAINS), "-k", "no such test")
    assert none.returncode == 1
    assert "no test matches -k 'no such test' (12 tests in " in none.stderr
    assert none.stdout == ""


def test_example_chains_pass() -> None:
    result = chainserve("test", str(EXAMPLE_CHAINS))
    assert result.returncode == 0, result.stdout + result.stderr
    marks, note, summary = result.stdout.splitlines()
    assert marks == "." * 12
    assert note == "9 live-only checks not run; use --live"
    assert summary.startswith("12 passed, 0 failed in ")
    assert "12 tests from" in result.stderr and "built-in Bedrock emulator" in result.stderr


def test_live_checks_run_only_with_live(tmp_path: Path, bedrock: Emulator) -> None:
    chains(tmp_path, live=LIVE)
    offline = chainserve("test", "chains", cwd=tmp_path)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.splitlines()[1:2] == ["1 live-only check not run; use --live"]
    assert bedrock.state.calls == []  # offline used the built-in emulator, not this one

    # --live goes to CHAINSERVE_BEDROCK_ENDPOINT_URL: this emulator, whose first call fails.
    bedrock.state.add_faults([Fault(kind="throttle")])
    live = chainserve(
        "test",
        "chains",
        "--live",
        "--concurrency",
        "1",
        cwd=tmp_path,
        env={
            "CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url,
            "CHAINSERVE_BEDROCK_MAX_ATTEMPTS": "1",
        },
    )
    assert live.returncode == 1
    marks, error, failure, summary = live.stdout.splitlines()
    assert marks == "E.F"
    assert error.startswith(
        f"chains/live.yaml:{line_of(LIVE, '# THROTTLED')}: live › throttled: "
        f"the model call failed: 429 Bedrock is throttling model {MODEL}: "
    )
    assert failure == (
        f"chains/live.yaml:{line_of(LIVE, '# LIVE_CHECK')}: live › live check: "
        f'expected output not to contain "[emulator]", got "[emulator] {MODEL} received:↵system: Be b…"'
    )
    assert summary.startswith("1 passed, 1 failed, 1 error in ")
    assert f"answered by Bedrock ({bedrock.url})" in live.stderr
    # Two calls: the prompt-only test never calls the model.
    assert [call.status for call in bedrock.state.calls] == ["failed", "completed"]


def test_no_tests_is_a_failure(tmp_path: Path) -> None:
    chains(tmp_path, echo=ECHO)
    result = chainserve("test", "chains", "--junit", "out.xml", cwd=tmp_path)
    assert result.returncode == 1
    assert "chainserve test: no tests in chains; add a tests: section" in result.stderr
    assert ET.parse(tmp_path / "out.xml").getroot().get("tests") == "0"


def test_schema_publishes_tests() -> None:
    result = chainserve("schema")
    schema = json.loads(result.stdout)
    tests = schema["properties"]["tests"]
    assert tests["items"] == {"$ref": "#/$defs/ChainTest"}
    checks: dict[str, Any] = schema["$defs"]["TextChecks"]
    assert set(checks["properties"]) == {
        "contains",
        "not_contains",
        "regex",
        "equals",
        "json",
        "json_schema",
        "min_length",
        "max_length",
    }
    assert checks["additionalProperties"] is False
    assert set(schema["$defs"]["ChainTest"]["properties"]) == {
        "name",
        "inputs",
        "prompt",
        "output",
        "live",
    }


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_one_line_on_a_terminal() -> None:
    class Done:
        def __init__(self, status: str) -> None:
            self.status = status

    terminal, log = _Terminal(), io.StringIO()
    for stream in (terminal, log):
        progress = Progress(3, stream)
        for status in ("passed", "failed", "error"):
            progress.add(Done(status))  # type: ignore[arg-type]
        progress.finish()
    assert terminal.getvalue().split("\r\x1b[K") == [
        "",
        "1/3 tests: 1 passed, 0 failed",
        "2/3 tests: 1 passed, 1 failed",
        "3/3 tests: 1 passed, 1 failed, 1 error\n",
    ]
    assert log.getvalue() == ".FE\n"


def test_readme_example_loads(tmp_path: Path) -> None:
    readme = (EXAMPLE_CHAINS.parent / "README.md").read_text()
    [example] = re.findall(r"## Chain tests.*?```yaml\n(.*?)```", readme, re.S)
    summarize = (EXAMPLE_CHAINS / "summarize.yaml").read_text().split("tests:")[0]
    path = tmp_path / "summarize.yaml"
    path.write_text(summarize + example)
    [test] = load_file(path).tests
    assert test.name == "three sentences by default" and test.live is not None
