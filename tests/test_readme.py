"""The README's examples are real: its chain file loads, its commands exist."""

import re
from pathlib import Path

from service.chains.loader import load_file
from tests.conftest import REPO

README = (REPO / "README.md").read_text()


def test_annotated_chain_file_is_valid(tmp_path: Path) -> None:
    [example] = re.findall(r"## Chain files.*?```yaml\n(.*?)```", README, re.S)
    path = tmp_path / "translate.yaml"
    path.write_text(example)
    spec = load_file(path)
    assert spec.model.provider == "bedrock"
    assert set(spec.inputs) == {"text", "language", "history"}


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test    # installs the test tools too, then runs the chains' own tests" in README
    assert "\nmake test\n" in ci


def test_every_setting_is_documented() -> None:
    from service.settings import Settings

    for name in Settings.model_fields:
        assert f"CHAINSERVE_{name.upper()}" in README, name
