"""The Lambda package, run as Lambda runs it: a contract test for run.sh and the zip.

The package is built for this machine's Python from the locked wheels (``make test``
downloads them, so the build here is offline), laid out as Lambda's task root, and started
through run.sh by a Python that has no packages of its own, with the environment read from
template.yaml. The adapter's part is played by this test: it polls the readiness path every
10 ms, as the adapter does, then streams a chain through.
"""

import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.deploy import package
from service.emulator.server import Emulator
from service.emulator.state import Pace
from tests.conftest import REPO
from tests.helpers import wait_for
from tests.template import Template
from tests.test_cli import free_port

WHEELS = REPO / ".venv" / "wheels"


@pytest.fixture(scope="module")
def wheels() -> Path:
    if not (WHEELS / ".done").exists() and not any(WHEELS.glob("*.whl")):
        pytest.fail("no locked wheels in .venv/wheels: run the tests with `make test`")
    return WHEELS


def build_package(wheels: Path, *where: str) -> subprocess.CompletedProcess[str]:
    """``chainserve package`` for this machine's Python, from the locked wheels only."""
    command = [sys.executable, "-m", "service", "package", "--arch", "native"]
    return subprocess.run(
        [*command, "--wheels", str(wheels), *where], check=True, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def task_root(tmp_path_factory: pytest.TempPathFactory, wheels: Path) -> Path:
    root = tmp_path_factory.mktemp("task")
    build_package(wheels, "--into", str(root))
    return root


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with nothing installed, like Lambda's runtime: the package must carry all."""
    venv = tmp_path_factory.mktemp("bare")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    return venv / "bin"


@contextmanager
def started(task_root: Path, bare_python: Path, bedrock: Emulator, **extra: str) -> Iterator[Any]:
    """run.sh started as Lambda would, with template.yaml's environment (plus ``extra``);
    yields the process (run.sh execs uvicorn, so it is the server's) with its ``url``."""
    variables = Template(REPO / "template.yaml").function()["Properties"]["Environment"][
        "Variables"
    ]
    port = free_port()  # the template's 8080 may be taken on this machine
    env = {
        **{name: str(value) for name, value in variables.items()},
        "PORT": str(port),
        "PATH": f"{bare_python}:/usr/bin:/bin",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CHAINSERVE_BEDROCK_ENDPOINT_URL": bedrock.url,
        "PYTHONDONTWRITEBYTECODE": "1",  # Lambda's task root is read-only
        **extra,
    }
    process: Any = subprocess.Popen(
        [str(task_root / "run.sh")],
        cwd="/",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    process.url = f"http://127.0.0.1:{port}"
    readiness = process.url + variables["AWS_LWA_READINESS_CHECK_PATH"]

    def ready() -> bool:  # the adapter: any status from 100 to 499 means ready
        assert process.poll() is None, process.stdout.read()
        try:
            return 100 <= httpx.get(readiness, timeout=1).status_code < 500
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, timeout=60)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def function(task_root: Path, bare_python: Path, bedrock: Emulator) -> Iterator[tuple[str, int]]:
    with started(task_root, bare_python, bedrock) as process:
        yield process.url, process.pid


@pytest.mark.parametrize(("setting", "logged"), [("", False), ("TRUE", True)])
def test_access_log_only_when_asked(
    task_root: Path, bare_python: Path, bedrock: Emulator, setting: str, logged: bool
) -> None:
    with started(task_root, bare_python, bedrock, CHAINSERVE_ACCESS_LOG=setting) as process:
        httpx.get(f"{process.url}/chains")
    output = process.stdout.read()
    assert ('"GET /chains HTTP/1.1" 200' in output) is logged, output


def test_run_sh_serves_the_package_as_lambda_would(
    function: tuple[str, int], bedrock: Emulator
) -> None:
    url, _ = function
    bedrock.state.pace = Pace(tokens_per_second=30, reply_tokens=30)
    pieces: list[str] = []
    with httpx.stream(
        "POST",
        f"{url}/chains/summarize/stream",
        json={"input": {"text": "From Lambda."}},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        for piece in response.iter_text():
            if not pieces:
                [call] = bedrock.state.calls
                assert call.status == "running"  # incremental: the model is still generating
            pieces.append(piece)
    assert len("".join(pieces).split()) == 30 and len(pieces) > 5


def test_the_service_fits_in_256_mb(function: tuple[str, int]) -> None:
    """A bound, not a benchmark: after a few runs of each chain, well inside 256 MB."""
    url, pid = function
    for _ in range(10):
        httpx.post(f"{url}/chains/chat/invoke", json={"input": {"question": "hi"}})
        httpx.post(f"{url}/chains/translate/stream", json={"input": {"text": "hi"}})
    status = Path(f"/proc/{pid}/status").read_text()
    rss_mb = int(status.split("VmRSS:")[1].split()[0]) / 1024
    assert rss_mb < 192, f"{rss_mb:.0f} MB resident"


def test_emf_metrics_from_the_package(
    task_root: Path, bare_python: Path, bedrock: Emulator
) -> None:
    """What Powertools the package keeps is enough for EMF records (the rest is pruned)."""
    with started(task_root, bare_python, bedrock, CHAINSERVE_METRICS="emf") as process:
        response = httpx.post(
            f"{process.url}/chains/summarize/invoke", json={"input": {"text": "From Lambda."}}
        )
        assert response.status_code == 200, response.text
    records = [json.loads(line) for line in process.stdout.read().splitlines() if '"_aws"' in line]
    assert [record["chain"] for record in records] == ["summarize"]
    assert records[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "chainserve"
    powertools = task_root / "aws_lambda_powertools"
    assert not (powertools / "event_handler").exists()
    kept = (powertools / "utilities").iterdir()
    assert sorted(p.name for p in kept if p.name != "__pycache__") == [
        "__init__.py",
        "jmespath_utils",
    ]


def test_package_leaves_out_what_the_function_does_not_need(task_root: Path) -> None:
    assert os.access(task_root / "run.sh", os.X_OK)
    assert (task_root / "service" / "app.py").is_file()
    assert sorted(p.name for p in (task_root / "chains").iterdir()) == sorted(
        p.name for p in (REPO / "chains").glob("*.yaml")
    )
    assert not (task_root / "service" / "emulator").exists()
    assert not (task_root / "watchfiles").exists()
    assert not (task_root / "hypercorn").exists() and not (task_root / "h2").exists()
    # Byte code for this Python (the target here), hash-checked: Lambda cannot write its own.
    tag = "cpython-{}{}".format(*sys.version_info[:2])
    compiled = list((task_root / "service").rglob("*.pyc"))
    assert compiled and all(tag in path.name for path in compiled)
    assert not (task_root / "numpy" / "_core" / "tests").exists()
    services = {p.name for p in (task_root / "botocore" / "data").iterdir() if p.is_dir()}
    assert "bedrock-runtime" in services and "ec2" not in services


def test_zip_keeps_run_sh_executable(tmp_path: Path, wheels: Path) -> None:
    output = tmp_path / "function.zip"
    result = build_package(wheels, "--output", str(output))
    assert "MB unzipped" in result.stdout and "MB zipped" in result.stdout
    with zipfile.ZipFile(output) as archive:
        mode = archive.getinfo("run.sh").external_attr >> 16
        assert mode & 0o111
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())


def test_oversized_package_is_refused(
    tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(package, "LAMBDA_UNZIPPED_LIMIT", 1024 * 1024)
    with pytest.raises(package.PackageTooLarge, match="over Lambda's limit of 250 MB"):
        package.lay_out(tmp_path / "task", package.Target(None), wheels)


def test_lock_pins_every_dependency() -> None:
    lock = (REPO / "requirements.lock").read_text().splitlines()
    # Names as PEP 503 normalises them: pip writes fastapi_offline, pyproject fastapi-offline.
    pins = {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in (
            line.split("==") for line in lock if line and not line.startswith("#")
        )
    }
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = requirement.split(">")[0].split("<")[0].split("=")[0].strip().lower()
        name = re.sub(r"[-_.]+", "-", name)
        assert name in pins, name
