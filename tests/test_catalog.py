"""Reloading chain files: each file on its own, errors visible over HTTP, hostile files contained.

Servers here are real uvicorn servers with ``reload=True``, watching a folder of their own.
"""

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.chains.guarded import Loaded, load_guarded
from service.chains.loader import ChainFileError, ChainFileErrors
from service.chains.spec import ChainSpec
from tests.conftest import EXAMPLE_CHAINS, ServerFactory
from tests.helpers import wait_for

SUMMARIZE = (EXAMPLE_CHAINS / "summarize.yaml").read_text()
BROKEN = SUMMARIZE.replace("temperature", "temprature")  # line 7


def write_huge(path: Path, megabytes: int) -> Path:
    """A chain file of comment lines: past a raised CHAINSERVE_MAX_CHAIN_FILE_BYTES, the one
    thing left that loads slowly. PyYAML scans a few MB a second, holding the text twice over."""
    with path.open("w") as out:
        out.write(SUMMARIZE)
        for _ in range(megabytes):
            out.write("#\n" * 2**19)
    return path


HUGE_BYTES = 2**30  # a raised CHAINSERVE_MAX_CHAIN_FILE_BYTES


class Watched:
    """A chainserve dev server on a folder of its own, and HTTP helpers."""

    def __init__(self, folder: Path, make_server: ServerFactory, **settings: Any) -> None:
        self.folder = folder
        self.url = make_server(chains_dir=folder, reload=True, **settings).url

    def write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text)
        return path

    def health(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/healthz", timeout=10)
        assert response.status_code == 200  # always: a readiness check passes while others serve
        return dict(response.json())

    def errors(self) -> list[str]:
        return [error["text"] for error in self.health()["errors"]]

    def names(self) -> list[str]:
        return [chain["name"] for chain in httpx.get(f"{self.url}/chains").json()["chains"]]

    def description(self, name: str) -> str | None:
        response = httpx.get(f"{self.url}/chains/{name}")
        return str(response.json()["description"]) if response.status_code == 200 else None


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    chains = tmp_path / "chains"
    chains.mkdir()
    for name in ("summarize.yaml", "chat.yaml"):
        shutil.copy(EXAMPLE_CHAINS / name, chains / name)
    return chains


def test_broken_file_keeps_serving_while_others_reload(
    folder: Path, make_server: ServerFactory
) -> None:
    server = Watched(folder, make_server)
    assert server.health() == {"status": "ok", "chains": 2, "runs_active": 0, "errors": []}
    server.write("summarize.yaml", BROKEN)
    server.write("echo.yaml", SUMMARIZE.replace("Summarize a text", "Echo a text"))
    chat = (folder / "chat.yaml").read_text()
    server.write("chat.yaml", chat.replace("description: ", "description: Edited. ", 1))

    wait_for(lambda: server.description("echo") == "Echo a text in a few sentences.", timeout=30)
    wait_for(lambda: str(server.description("chat")).startswith("Edited."), timeout=30)
    assert server.description("summarize") == "Summarize a text in a few sentences."
    run = httpx.post(f"{server.url}/chains/summarize/invoke", json={"input": {"text": "hi"}})
    assert run.status_code == 200  # the last good version still runs

    path = folder / "summarize.yaml"
    expected = {
        "file": str(path),  # outside the working directory: shown as given
        "line": 7,
        "where": "model.params",
        "message": "unknown key 'temprature' (did you mean 'temperature'?)",
        "text": f"{path}:7: model.params: unknown key 'temprature' (did you mean 'temperature'?)",
    }
    health = server.health()
    assert health["status"] == "degraded" and health["chains"] == 3
    assert health["errors"] == [expected]
    listing = httpx.get(f"{server.url}/chains").json()
    assert listing["errors"] == [expected]
    assert sorted(chain["name"] for chain in listing["chains"]) == ["chat", "echo", "summarize"]

    server.write("summarize.yaml", SUMMARIZE.replace("Summarize a text", "Shorten a text"))
    wait_for(lambda: server.health()["status"] == "ok", timeout=30)
    assert server.errors() == []
    assert server.description("summarize") == "Shorten a text in a few sentences."


def test_deleted_file_disappears_and_new_broken_file_never_serves(
    folder: Path, make_server: ServerFactory
) -> None:
    server = Watched(folder, make_server)
    (folder / "chat.yaml").unlink()
    server.write("draft.yaml", "model:\n  id: m\nprompt:\n  messages:\n    - user: {question}\n")
    wait_for(lambda: server.names() == ["summarize"] and server.errors() != [], timeout=30)
    assert httpx.get(f"{server.url}/chains/chat").status_code == 404
    assert httpx.get(f"{server.url}/chains/draft").status_code == 404
    [error] = server.errors()
    assert error.endswith(
        "draft.yaml:5: prompt.messages[0].user: a template that starts with { must be quoted: "
        '- user: "{question}"'
    )


def test_a_chain_name_stays_with_the_file_that_had_it(
    folder: Path, make_server: ServerFactory
) -> None:
    (folder / "chat.yaml").unlink()
    (folder / "b.yaml").write_text("name: same\n" + SUMMARIZE.replace("Summarize a text", "B text"))
    (folder / "c.yaml").write_text("name: same\n" + SUMMARIZE.replace("Summarize a text", "C text"))
    server = Watched(folder, make_server)  # dev starts despite the conflict
    assert server.description("same") == "B text in a few sentences."  # first in name order
    [error] = server.errors()
    assert f"c.yaml:1: name: chain 'same' is already defined in {folder / 'b.yaml'}" in error

    # a.yaml comes first in name order, but b.yaml had the name: b keeps it.
    server.write("a.yaml", "name: same\n" + SUMMARIZE.replace("Summarize a text", "A text"))
    wait_for(lambda: len(server.errors()) == 2, timeout=30)
    assert server.description("same") == "B text in a few sentences."
    assert all("already defined in" in error and "b.yaml" in error for error in server.errors())

    (folder / "b.yaml").unlink()
    wait_for(lambda: server.description("same") == "A text in a few sentences.", timeout=30)
    [error] = server.errors()
    assert "c.yaml:1: name: chain 'same' is already defined in" in error and "a.yaml" in error


def test_a_model_that_cannot_be_built_is_that_files_error(
    folder: Path, make_server: ServerFactory
) -> None:
    server = Watched(folder, make_server)
    server.write("summarize.yaml", SUMMARIZE.replace("  params:", "  region: eu west 1\n  params:"))
    wait_for(lambda: server.errors() != [], timeout=30)
    [error] = server.health()["errors"]
    assert (error["line"], error["where"]) == (3, "model")  # the line, from the child's spec
    assert error["message"].startswith("cannot build: Provided region_name 'eu west 1'")
    assert server.description("summarize") == "Summarize a text in a few sentences."


def test_editor_droppings_are_ignored(folder: Path, make_server: ServerFactory) -> None:
    server = Watched(folder, make_server)
    droppings = [".#summarize.yaml", "summarize.yaml~", ".summarize.yaml.swp", "#summarize.yaml#"]
    for index, name in enumerate(droppings):
        # Valid chains with names of their own: loaded, they would show up.
        server.write(name, f"name: dropping{index}\n" + SUMMARIZE)
    server.write("broken.yaml~", BROKEN)
    server.write("summarize.yaml", SUMMARIZE.replace("Summarize a text", "Edited"))
    wait_for(lambda: server.description("summarize") == "Edited in a few sentences.", timeout=30)
    assert server.names() == ["chat", "summarize"]
    assert server.errors() == []


def test_a_slow_file_does_not_stop_other_files_reloading(
    folder: Path, make_server: ServerFactory
) -> None:
    server = Watched(folder, make_server, max_chain_file_bytes=HUGE_BYTES)
    write_huge(folder / "huge.yaml", 100)  # 100 MB: minutes of parsing, and 300 MB and more
    server.write("summarize.yaml", SUMMARIZE.replace("Summarize a text", "Edited"))
    wait_for(lambda: server.description("summarize") == "Edited in a few sentences.", timeout=60)
    wait_for(lambda: server.errors() != [], timeout=60)
    [error] = server.errors()
    # Which limit trips first depends on the machine: the time (5 s) or the memory (256 MB).
    assert "huge.yaml:1: took longer than 5 s to load" in error or "used more than" in error
    # The watcher goes on: the next edit reloads, and the bomb is not loaded again.
    server.write(
        "chat.yaml",
        (folder / "chat.yaml").read_text().replace("description: ", "description: Again. ", 1),
    )
    wait_for(lambda: str(server.description("chat")).startswith("Again."), timeout=30)
    assert len(server.errors()) == 1
    (folder / "huge.yaml").unlink()


def test_watching_survives_the_folder_going_away(folder: Path, make_server: ServerFactory) -> None:
    server = Watched(folder, make_server)
    shutil.rmtree(folder)
    wait_for(lambda: any("cannot list chain files" in error for error in server.errors()), 30)
    assert server.names() == ["chat", "summarize"]  # what was served keeps serving
    folder.mkdir()
    server.write("echo.yaml", SUMMARIZE)
    wait_for(lambda: server.names() == ["echo"], timeout=30)
    assert server.health()["status"] == "ok"
    server.write("more.yaml", SUMMARIZE)  # and the new folder is watched
    wait_for(lambda: server.names() == ["echo", "more"], timeout=30)


def errors_of(loaded: Loaded) -> list[ChainFileError]:
    assert isinstance(loaded, list), loaded  # a file that failed to load: its errors
    return loaded


def test_guarded_load_limits_time_and_memory(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(SUMMARIZE)
    slow = write_huge(tmp_path / "slow.yaml", 30)  # seconds to scan, at any speed
    hungry = slow  # 30 MB read: over 20 MB at once

    spec = load_guarded([good])[good]
    assert isinstance(spec, ChainSpec) and spec.name == "good"
    assert spec._source == (good, 3)  # private attributes survive the trip from the child
    loaded = load_guarded([slow], timeout=1, max_memory_mb=2048, max_bytes=HUGE_BYTES)
    [error] = errors_of(loaded[slow])
    assert str(error) == f"{slow}:1: took longer than 1 s to load; make it smaller"

    loaded = load_guarded([hungry], timeout=120, max_memory_mb=20, max_bytes=HUGE_BYTES)
    [error] = errors_of(loaded[hungry])
    assert str(error) == f"{hungry}:1: used more than 20 MB to load; make it smaller"
    [error] = errors_of(load_guarded([slow])[slow])
    assert error.message.startswith("the file is 30 MB; chain files are at most 1 MB")


def test_guarded_load_reports_ordinary_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BROKEN)
    [error] = errors_of(load_guarded([path])[path])
    assert str(error).endswith(
        "bad.yaml:7: model.params: unknown key 'temprature' (did you mean 'temperature'?)"
    )


def test_serve_settings_refuse_a_broken_folder(folder: Path, make_server: ServerFactory) -> None:
    (folder / "summarize.yaml").write_text(BROKEN)
    with pytest.raises(ChainFileErrors) as caught:
        make_server(chains_dir=folder)  # reload off: production fails fast
    assert "summarize.yaml:7: model.params: unknown key 'temprature'" in str(caught.value)
    assert Watched(folder, make_server).names() == ["chat"]  # reload on: starts with the rest
