"""Shared fixtures: the Bedrock emulator and chainserve, each a real uvicorn server on loopback.

No test needs AWS credentials or any network beyond 127.0.0.1: botocore signs with dummy
credentials, and every Bedrock call goes to the emulator over real HTTP.
"""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from service.app import create_app
from service.background import BackgroundServer
from service.emulator.server import Emulator
from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CHAINS = REPO / "chains"
TEST_CHAINS = REPO / "tests" / "chains"

# Dummy credentials for botocore to sign with; no AWS profile, no instance metadata lookups.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_EC2_METADATA_DISABLED="true",
)
for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
    os.environ.pop(variable, None)


@pytest.fixture(scope="session")
def bedrock() -> Iterator[Emulator]:
    """The Bedrock Runtime emulator, shared by the session and reset before each test."""
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def _fresh_emulator(request: pytest.FixtureRequest) -> None:
    if "bedrock" in request.fixturenames:
        request.getfixturevalue("bedrock").state.reset()


@pytest.fixture
def runtime(bedrock: Emulator) -> Any:
    """A boto3 Bedrock Runtime client of the emulator, without retries."""
    from botocore.config import Config

    return boto3.client(
        "bedrock-runtime",
        endpoint_url=bedrock.url,
        config=Config(retries={"total_max_attempts": 1}),
    )


@pytest.fixture(scope="session")
def chains_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example chains and the tests' own, copied so tests never touch the repository's."""
    folder = tmp_path_factory.mktemp("chains")
    for path in [*EXAMPLE_CHAINS.glob("*.yaml"), *TEST_CHAINS.glob("*.yaml")]:
        shutil.copy(path, folder / path.name)
    return folder


ServerFactory = Callable[..., BackgroundServer]


@pytest.fixture(scope="session")
def make_server(bedrock: Emulator, chains_dir: Path) -> Iterator[ServerFactory]:
    """Start chainserve on a loopback port with settings overridden as given."""
    started: list[BackgroundServer] = []

    def make(**overrides: Any) -> BackgroundServer:
        settings = Settings(
            **{
                "chains_dir": chains_dir,
                "bedrock_endpoint_url": bedrock.url,
                "bedrock_max_attempts": 1,
                "log_level": "warning",
                **overrides,
            }
        )
        server = BackgroundServer(create_app(settings)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(make_server: ServerFactory) -> BackgroundServer:
    """chainserve serving the example chains against the emulator."""
    return make_server()


@pytest.fixture
def client(server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture
def tab(browser: Any) -> Iterator[Callable[[BackgroundServer], Any]]:
    """Open a :class:`tests.browser.Tab` on a server; each is checked and closed after the
    test (nothing outside its origin asked for, no page error, no CSP violation)."""
    from tests.browser import Tab

    tabs: list[Tab] = []

    def open_tab(server: BackgroundServer) -> Tab:
        tabs.append(Tab(browser, server.url))
        return tabs[-1]

    yield open_tab
    for opened in tabs:
        opened.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless chromium for a browser test module (see tests/browser.py), one per module."""
    from tests.browser import launched, skip_unless_available

    skip_unless_available()
    with launched() as chromium:
        yield chromium
