"""Hostile or odd chain files: each is an error naming the file (and line), never a hang, a
traceback or gigabytes read — in ``chainserve validate``, at start-up and on reload alike.

Special files are real (FIFOs, symlinks, sparse files in tmp_path); ``validate`` and ``serve``
run as real processes, so a file that hangs the loader fails the test at the process timeout
instead of hanging the test run.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from service.app import create_app
from service.chains.catalog import Catalog
from service.chains.loader import ChainFileErrors, load_file, load_folder
from service.chains.reading import UnreadableFile, read_chain_file
from service.settings import Settings
from tests.conftest import ServerFactory
from tests.test_cli import free_port

CHAINSERVE = [sys.executable, "-m", "service"]

VALID = """\
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
prompt:
  messages:
    - user: "Say {text}"
inputs:
  text:
    type: string
"""
MUSTACHE = """\
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
prompt:
  format: mustache
  messages:
    - user: "{body}"
inputs:
  text: {{}}
"""


def alias_bomb() -> str:
    """643 bytes; 9**9 (387 million) strings once the aliases are expanded."""
    lines = ["x-anchors:", "  l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n" + VALID.replace("    type: string\n", "    default: *l8\n")


def merge_bomb() -> str:
    """495 bytes of << merges; PyYAML copies 9**8 (43 million) entries to build them."""
    lines = ["l0: &l0 {k: v}"]
    for level in range(1, 9):
        lines.append(f"l{level}: &l{level} {{<<: [{', '.join([f'*l{level - 1}'] * 9)}]}}")
    return "\n".join(lines) + "\n"


def hostile_folder(folder: Path, outside: Path) -> None:
    """One of each hostile file, and a good chain beside them."""
    folder.mkdir()
    (folder / "good.yaml").write_text(VALID)
    os.mkfifo(folder / "fifo.yaml")
    (folder / "loop.yaml").symlink_to("loop.yaml")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "elsewhere.yaml").symlink_to(outside)
    with (folder / "huge.yaml").open("wb") as sparse:  # 10 GB that takes no disk
        sparse.truncate(10 * 2**30)
    (folder / "bomb.yaml").write_text(alias_bomb())
    (folder / "merge.yaml").write_text(merge_bomb())
    (folder / "delimiters.yaml").write_text(MUSTACHE.format(body="{{=<% %>=}}<%text%>"))
    (folder / "padded.yaml").write_text(VALID.replace('"Say {text}"', '"{text:>900000000}"'))


HOSTILE_ERRORS = [
    "bomb.yaml:7: too many repeated anchors/aliases: with its aliases (*name) and << merges "
    "expanded, the file would hold more than 100,000 values; refer to anchors less often",
    "delimiters.yaml:6: prompt.messages[0]: mustache set-delimiter tags are not supported "
    "({{=<% %>=}}): write variables as {{name}}",
    "elsewhere.yaml:0: a symlink to {outside}, outside the chains folder: chain files must be "
    "inside it",
    "fifo.yaml:0: not a regular file (a FIFO): only regular files are chain files",
    "huge.yaml:0: the file is 10 GB; chain files are at most 1 MB: make it smaller, or raise "
    "CHAINSERVE_MAX_CHAIN_FILE_BYTES",
    "loop.yaml:0: a symlink loop (it never reaches a file): point it at a chain file, or remove it",
    "merge.yaml:6: too many repeated anchors/aliases",
    "padded.yaml:5: prompt.messages[0]: format specs and conversions are not allowed in "
    "templates ({text:>900000000}): write {text}",
    "zero.yaml:0: a symlink to /dev/zero, outside the chains folder",
]


def assert_hostile_errors(output: str, outside: Path) -> None:
    for expected in HOSTILE_ERRORS:
        assert expected.replace("{outside}", str(outside)) in output, output
    assert "good.yaml" not in output and "Traceback" not in output
    assert "a secret" not in output  # the outside file's text


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # The timeout is what a regression runs into: a FIFO blocks, a bomb runs for hours.
    return subprocess.run(
        [*CHAINSERVE, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def errors_of(path: Path, max_bytes: int = 1_048_576) -> list[str]:
    with pytest.raises(ChainFileErrors) as caught:
        load_file(path, max_bytes)
    return [str(error) for error in caught.value.errors]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    path = tmp_path / "secret.yaml"
    path.write_text("password: a secret\n")
    return path


def test_validate_refuses_hostile_files(tmp_path: Path, outside: Path) -> None:
    hostile_folder(tmp_path / "chains", outside)
    result = run("validate", str(tmp_path / "chains"))
    assert result.returncode == 1
    assert_hostile_errors(result.stderr, outside)


def test_serve_refuses_hostile_files_at_start_up(tmp_path: Path, outside: Path) -> None:
    hostile_folder(tmp_path / "chains", outside)
    result = run("serve", "--port", str(free_port()), "--chains", str(tmp_path / "chains"))
    assert result.returncode == 1
    assert_hostile_errors(result.stderr, outside)


def test_create_app_refuses_hostile_files(tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "chains"
    hostile_folder(folder, outside)
    (folder / "fifo.yaml").unlink()  # in-process, a regression would hang the test run
    with pytest.raises(ChainFileErrors) as caught:
        create_app(Settings(chains_dir=folder, log_level="warning"))
    assert len(caught.value.errors) == len(HOSTILE_ERRORS) - 1
    # reload on (chainserve dev): starts, serving the good file
    app = create_app(Settings(chains_dir=folder, log_level="warning", reload=True))
    assert [chain.name for chain in app.state.catalog] == ["good"]


def test_reload_refuses_hostile_files(tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "chains"
    folder.mkdir()
    (folder / "good.yaml").write_text(VALID)
    catalog = Catalog(Settings(chains_dir=folder))
    catalog.load()
    (folder / "good.yaml").unlink()
    hostile_folder(tmp_path / "staging", outside)
    for path in (tmp_path / "staging").iterdir():
        path.rename(folder / path.name)  # symlinks move as links, the FIFO as a FIFO
    (folder / "dangling.yaml").symlink_to("nothing.yaml")
    assert len(catalog.reload()) == len(HOSTILE_ERRORS) + 2  # and good.yaml, rewritten
    text = "\n".join(str(error) for error in catalog.errors)
    assert_hostile_errors(text, outside)
    assert "dangling.yaml:0: a symlink to nothing.yaml, which does not exist" in text
    assert [chain.name for chain in catalog] == ["good"]
    (folder / "loop.yaml").unlink()
    (folder / "loop.yaml").write_text(VALID)
    catalog.reload()
    assert [chain.name for chain in catalog] == ["good", "loop"]
    assert "loop.yaml" not in "\n".join(str(error) for error in catalog.errors)


def test_bombs_are_refused_before_they_expand(tmp_path: Path) -> None:
    for name, text, line in (("bomb.yaml", alias_bomb(), 7), ("merge.yaml", merge_bomb(), 6)):
        path = tmp_path / name
        path.write_text(text)
        started = time.monotonic()
        [error] = errors_of(path)
        # A bound, not a measure (it takes milliseconds): expanded, these take hours.
        assert time.monotonic() - started < 10
        assert error.startswith(f"{path}:{line}: too many repeated anchors/aliases")


def test_aliases_within_the_bound_load(tmp_path: Path) -> None:
    """Sharing a prompt or a mapping through an anchor is what aliases are for."""
    text = VALID.replace('"Say {text}"', '&say "Say {text}"') + (
        "tests:\n"
        "  - name: a\n"
        "    inputs: &base {text: hi}\n"
        "    prompt: {contains: Say hi}\n"
        "  - name: b\n"
        "    inputs: {<<: *base}\n"
        "    prompt: {not_contains: *say}\n"
    )
    spec = load_file(_write(tmp_path, "shared.yaml", text))
    assert [test.inputs for test in spec.tests] == [{"text": "hi"}, {"text": "hi"}]


def test_alias_loops_and_too_many_values(tmp_path: Path) -> None:
    loop = _write(tmp_path, "loop.yaml", VALID + "description: &d [a, *d]\n")
    assert errors_of(loop) == [
        f"{loop}:9: an alias inside its own anchor (&name … *name): the value would contain itself"
    ]
    many = _write(tmp_path, "many.yaml", VALID + "tests: [" + ", ".join(["a"] * 150_000) + "]\n")
    started = time.monotonic()
    assert errors_of(many) == [
        f"{many}:9: more than 100,000 values: chain files hold hundreds; make it smaller"
    ]
    assert time.monotonic() - started < 30  # a bound: composing stops at the limit


def test_size_limit(tmp_path: Path) -> None:
    exact = _write(tmp_path, "exact.yaml", VALID)
    size = exact.stat().st_size
    assert load_file(exact, max_bytes=size).name == "exact"
    assert errors_of(exact, max_bytes=size - 1) == [
        f"{exact}:0: the file is {size:,} bytes; chain files are at most {size - 1:,} bytes: "
        "make it smaller, or raise CHAINSERVE_MAX_CHAIN_FILE_BYTES"
    ]
    big = _write(tmp_path, "big.yaml", VALID + "#" * 3000 + "\n")
    assert errors_of(big, max_bytes=1024) == [
        f"{big}:0: the file is 3.1 KB; chain files are at most 1 KB: make it smaller, or raise "
        "CHAINSERVE_MAX_CHAIN_FILE_BYTES"
    ]
    assert load_folder(tmp_path, max_bytes=4096).keys() == {"big", "exact"}


def test_validate_honours_the_size_setting(tmp_path: Path) -> None:
    _write(tmp_path, "big.yaml", VALID + "#" * 3000 + "\n")
    assert run("validate", str(tmp_path)).returncode == 0
    result = run("validate", str(tmp_path), env={"CHAINSERVE_MAX_CHAIN_FILE_BYTES": "2048"})
    assert result.returncode == 1
    assert "big.yaml:0: the file is 3.1 KB; chain files are at most 2 KB" in result.stderr


def test_symlinks_inside_the_folder_load_under_their_own_name(tmp_path: Path) -> None:
    (tmp_path / "versions").mkdir()
    _write(tmp_path / "versions", "v2.yaml", VALID.replace("Say", "Tell"))
    (tmp_path / "current.yaml").symlink_to("versions/v2.yaml")
    (tmp_path / "broken.yaml").symlink_to("versions/v3.yaml")
    _write(tmp_path / "versions", "v3.yaml", VALID.replace("type: string", "type: strin"))
    spec = load_file(tmp_path / "current.yaml")
    assert spec.name == "current" and spec.prompt.messages[0].text == "Tell {text}"
    [error] = errors_of(tmp_path / "broken.yaml")
    assert error.startswith(f"{tmp_path / 'broken.yaml'}:8: inputs.text.type:")


def test_only_regular_files_are_read(tmp_path: Path) -> None:
    (tmp_path / "folder.yaml").mkdir()
    [error] = errors_of(tmp_path / "folder.yaml")
    assert error.endswith(
        "folder.yaml:0: not a regular file (a folder): only regular files are "
        "chain files; remove it or rename it so it does not end in .yaml"
    )
    with pytest.raises(UnreadableFile, match=r"not a regular file \(a device\)"):
        read_chain_file(Path("/dev/zero"))  # its folder is /dev: only the kind stops it


def test_values_yaml_cannot_build_are_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, "dates.yaml", VALID + "description: 2023-02-30\n")
    assert errors_of(path) == [
        f"{path}:9: invalid YAML: cannot read '2023-02-30' (day is out of range for month): "
        "quote it to keep it as text"
    ]
    path = _write(tmp_path, "digits.yaml", VALID + "description: " + "1" * 5000 + "\n")
    [error] = errors_of(path)
    assert error.startswith(f"{path}:9: invalid YAML: cannot read '1111")
    path.write_bytes(VALID.encode() + b"description: caf\xe9\n")
    assert errors_of(path) == [f"{path}:9: not UTF-8 text (byte 0xe9): save the file as UTF-8"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{text!r}",
            "format specs and conversions are not allowed in templates ({text!r}): write {text}",
        ),
        (
            "{text:>{text}}",
            "format specs and conversions are not allowed in templates "
            "({text:>{text}}): write {text}",
        ),
        (
            "{text!s:^9}",
            "format specs and conversions are not allowed in templates ({text!s:^9}): write {text}",
        ),
    ],
)
def test_f_string_format_specs_are_refused(tmp_path: Path, template: str, expected: str) -> None:
    path = _write(tmp_path, "spec.yaml", VALID.replace('"Say {text}"', f'"{template}"'))
    assert errors_of(path) == [f"{path}:5: prompt.messages[0]: {expected}"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "{{> header}}{{text}}",
            "mustache partials are not supported ({{> header}}): chain "
            "files have nothing to include; write the text into the message",
        ),
        (
            "{{=<% %>=}}<%text%>",
            "mustache set-delimiter tags are not supported ({{=<% %>=}}): "
            "write variables as {{name}}",
        ),
        (
            "{{text.length}}",
            "{{text.length}}: inputs are plain values with no fields to look up: write {{text}}",
        ),
        ("{{.}} {{text}}", "{{.}} outside a section: write the input's name, e.g. {{text}}"),
        ("{{#text}}open", "the section {{#text}} is never closed: end it with {{/text}}"),
        ("{{text}}{{/text}}", "{{/text}} closes a section that was never opened: remove it"),
        (
            "{{#text}}{{/other}}",
            "{{/other}} closes a section, but the open one is {{#text}}: "
            "close that first with {{/text}}",
        ),
    ],
)
def test_mustache_tags_that_cannot_render_are_refused(
    tmp_path: Path, body: str, expected: str
) -> None:
    path = _write(tmp_path, "tags.yaml", MUSTACHE.format(body=body))
    assert errors_of(path) == [f"{path}:6: prompt.messages[0]: {expected}"]


SECTIONS = """\
model:
  id: anthropic.claude-3-haiku-20240307-v1:0
prompt:
  format: mustache
  messages:
    - system: "{{#brief}}Be brief and {{tone}}. {{/brief}}{{^brief}}Take your time. {{/brief}}"
    - user: "{{#context}}Context: {{context}} ({{.}}).\\n{{/context}}{{question}}"
inputs:
  brief: {type: boolean, default: false}
  tone: {default: kind}  # used only inside a section
  context: {default: ""}
  question: {}
"""


def test_mustache_sections_check_and_render(tmp_path: Path) -> None:
    """Variables used only inside a section count as used, and undeclared ones are caught."""
    path = _write(tmp_path, "sections.yaml", SECTIONS.replace("{{question}}", ""))
    assert errors_of(path) == [
        f"{path}:12: inputs.question: input 'question' is declared but the prompt never uses "
        "it; use {{question}} in a message or remove the input"
    ]
    path = _write(tmp_path, "sections.yaml", SECTIONS.replace("Context: {{context}}", "{{ctx}}"))
    [error] = errors_of(path)
    assert "template uses {{ctx}} but no input 'ctx' is declared" in error


def test_mustache_sections_run(tmp_path: Path, make_server: ServerFactory) -> None:
    _write(tmp_path, "sections.yaml", SECTIONS)
    url = make_server(chains_dir=tmp_path).url

    def rendered(**values: object) -> list[str]:
        response = httpx.post(f"{url}/chains/sections/render", json={"input": values})
        assert response.status_code == 200, response.text
        return [message["content"] for message in response.json()["messages"]]

    assert rendered(question="Why?") == ["Take your time. ", "Why?"]
    assert rendered(question="Why?", brief=True, context="a <b> & c") == [
        "Be brief and kind. ",
        "Context: a <b> & c (a <b> & c).\nWhy?",
    ]
    run = httpx.post(
        f"{url}/chains/sections/invoke",
        json={"input": {"question": "Why?", "context": "sky"}},
        timeout=30,
    )
    assert run.status_code == 200, run.text
    assert "user: Context: sky (sky).\nWhy?" in run.json()["output"]  # the emulator echoes


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path
