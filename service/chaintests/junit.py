"""``chainserve test --junit FILE``: the outcomes as JUnit XML, which CI systems read.

The common dialect (Jenkins, GitLab, GitHub actions' test reporters): ``testsuites`` holding a
``testsuite`` per chain and a ``testcase`` per test, ``classname`` the chain and ``name`` the
test, with ``failure`` (a check did not hold) or ``error`` (the test could not run: the model
call failed). Chain files that failed to load are errors of a suite named ``chain files``.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

from service.chains.loader import ChainFileError, display_path
from service.chaintests.report import failure_lines
from service.chaintests.runner import Outcome

LOAD_SUITE = "chain files"


def write_junit(
    path: Path, outcomes: list[Outcome], load_errors: list[ChainFileError], seconds: float
) -> None:
    root = ET.Element("testsuites", name="chainserve test", time=_seconds(seconds))
    suites: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        suites.setdefault(outcome.case.chain.name, []).append(outcome)
    for chain, members in suites.items():
        suite = _suite(root, chain, members, sum(outcome.seconds for outcome in members))
        suite.set("file", display_path(members[0].case.path))
        for outcome in members:
            _testcase(suite, outcome)
    if load_errors:
        suite = _suite(root, LOAD_SUITE, [], 0.0)
        suite.set("errors", str(len(load_errors)))
        suite.set("tests", str(len(load_errors)))
        for error in load_errors:
            case = ET.SubElement(
                suite, "testcase", classname=LOAD_SUITE, name=display_path(error.path), time="0"
            )
            ET.SubElement(case, "error", message=str(error), type="load").text = str(error)
    _total(root)
    ET.indent(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)


def _suite(root: ET.Element, name: str, members: list[Outcome], seconds: float) -> ET.Element:
    return ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(members)),
        failures=str(sum(outcome.status == "failed" for outcome in members)),
        errors=str(sum(outcome.status == "error" for outcome in members)),
        skipped="0",
        time=_seconds(seconds),
    )


def _testcase(suite: ET.Element, outcome: Outcome) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        classname=outcome.case.chain.name,
        name=outcome.case.test.name,
        time=_seconds(outcome.seconds),
        file=display_path(outcome.case.path),
        line=str(outcome.case.test._line),
    )
    if outcome.status == "passed":
        return
    lines = failure_lines(outcome)
    # The message is what stopped the test: the error (last), or the first check that failed.
    message = outcome.failures[-1 if outcome.status == "error" else 0].message
    kind = "error" if outcome.status == "error" else "failure"
    ET.SubElement(case, kind, message=message, type=kind).text = "\n".join(lines)


def _total(root: ET.Element) -> None:
    for attribute in ("tests", "failures", "errors"):
        root.set(attribute, str(sum(int(suite.get(attribute, 0)) for suite in root)))


def _seconds(seconds: float) -> str:
    return f"{seconds:.3f}"
