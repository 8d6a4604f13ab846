"""A chain test's image file (``photo: cat.png``) is read by chain files' own rules
(:mod:`service.chains.reading`): a regular file inside the chain's folder, its size checked
before a byte is read — so a FIFO, a device, a symlink out of the folder or a 10 GB file named
like an image is an error naming the file and the fix, never a hang or gigabytes read.

The files are real (FIFOs, symlinks, sparse files in tmp_path). The FIFO case runs
``chainserve test`` as a real process, so a reader that blocks on it fails the test at the
process timeout instead of hanging the test run.
"""

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from service.chains.images import read_image_file
from tests.image_files import png
from tests.test_images_files import CHAINSERVE, TESTED, refusals_at

FIX = "give a data URL, or the name of an image file beside the chain file"
LIMIT = 3_750_000  # Settings.max_image_bytes's default, which chain-test loading uses


def chain_naming(folder: Path, image: str) -> Path:
    """A chain file in ``folder`` whose test gives ``photo: <image>``."""
    folder.mkdir(exist_ok=True)
    path = folder / "look.yaml"
    path.write_text(TESTED.replace("{size}", "1").replace("photo: cat.png", f"photo: {image}"))
    return path


def test_chainserve_test_refuses_a_fifo_named_like_an_image_quickly(tmp_path: Path) -> None:
    folder = tmp_path / "chains"
    chain_naming(folder, "cat.png")
    os.mkfifo(folder / "cat.png")  # no writer ever comes: opening it to read would wait
    started = time.monotonic()
    done = subprocess.run(
        [*CHAINSERVE, "test", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert time.monotonic() - started < 60
    assert done.returncode != 0
    assert (
        f"{folder / 'look.yaml'}:15: tests[0].inputs.photo: 'cat.png' is not a regular file "
        f"(a FIFO); {FIX}"
    ) in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda folder: (folder / "cat.png").mkdir(), "'cat.png' is not a regular file (a folder)"),
        (
            lambda folder: (folder / "cat.png").symlink_to("cat.png"),
            "'cat.png' is a symlink loop (it never reaches a file)",
        ),
        (
            lambda folder: (folder / "cat.png").symlink_to("gone.png"),
            "'cat.png' is a symlink to gone.png, which does not exist",
        ),
    ],
    ids=["folder", "loop", "dangling"],
)
def test_only_a_regular_image_file_is_read(
    tmp_path: Path, make: Callable[[Path], object], problem: str
) -> None:
    folder = tmp_path / "chains"
    path = chain_naming(folder, "cat.png")
    make(folder)
    assert refusals_at(path, path.read_text()) == [
        f"{path}:15: tests[0].inputs.photo: {problem}; {FIX}"
    ]


def test_a_symlink_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "chains"
    path = chain_naming(folder, "cat.png")
    (tmp_path / "secret.png").write_bytes(png())  # a real image: only where it is stops it
    (folder / "cat.png").symlink_to(tmp_path / "secret.png")
    assert refusals_at(path, path.read_text()) == [
        f"{path}:15: tests[0].inputs.photo: 'cat.png' is outside {folder} (it leads to "
        f"{os.path.realpath(tmp_path / 'secret.png')}); put the image beside the chain file; {FIX}"
    ]


def test_a_symlink_within_the_folder_is_followed(tmp_path: Path) -> None:
    folder = tmp_path / "chains"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "cat-v2.png").write_bytes(png(12, 7))
    (folder / "cat.png").symlink_to("images/cat-v2.png")
    data_url = read_image_file(folder, "cat.png", LIMIT)
    assert data_url.startswith("data:image/png;base64,")


def test_an_oversize_image_file_is_refused_by_its_size_before_reading(tmp_path: Path) -> None:
    folder = tmp_path / "chains"
    path = chain_naming(folder, "big.png")
    with (folder / "big.png").open("wb") as sparse:  # 10 GB that takes no disk
        sparse.write(png()[:8])
        sparse.truncate(10 * 2**30)
    started = time.monotonic()
    errors = refusals_at(path, path.read_text())
    # The size shown is the file's own, from its stat: reading it would have stopped at the
    # limit + 1 byte and said "more than".
    assert errors == [
        f"{path}:15: tests[0].inputs.photo: 'big.png' is 10,737,418,240 bytes; an image is at "
        f"most {LIMIT:,} bytes: use a smaller image; {FIX}"
    ]
    assert time.monotonic() - started < 5


def test_a_device_is_not_read() -> None:
    with pytest.raises(ValueError, match=r"^'zero' is not a regular file \(a device\)"):
        read_image_file(Path("/dev"), "zero", LIMIT)  # its folder is /dev: only the kind stops it


def test_the_command_line_still_reads_a_pipe(tmp_path: Path) -> None:
    """``-i photo=@<(…)`` is the user's own pipe, named on their command line: read, bounded."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    image = png(3, 2)
    writer = subprocess.Popen(["sh", "-c", f'cat "{tmp_path}/image" > "{fifo}"'])
    (tmp_path / "image").write_bytes(image)
    try:
        data_url = read_image_file(tmp_path, "pipe", LIMIT, confine=False)
    finally:
        writer.wait(timeout=10)
    assert data_url.startswith("data:image/png;base64,")
