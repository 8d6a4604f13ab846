"""The Lambda zip, built without Docker: locked wheels for the target, plus our code.

``chainserve package`` (``make package``) installs ``requirements.lock`` with pip's
``--platform``/``--python-version``/``--only-binary=:all:`` for Lambda's architecture and
Python, adds ``service/``, ``chains/`` and ``run.sh``, leaves out what the function never
loads, prints the unzipped size and refuses more than Lambda's 250 MB.
``chainserve package --update-lock`` resolves ``pyproject.toml`` again into the lock file.

``--extra otel`` adds an optional extra of pyproject's (``chainserve[otel]``: OpenTelemetry):
its packages that the function's lock does not already pin, pinned in ``requirements-otel.lock``
(resolved with ``requirements.lock`` as constraints, so the shared packages keep the lock's
versions). ``--update-lock`` writes both.

Standard library only, and Python 3.8+: ``sam build`` runs it (``make build-ChainserveFunction``)
with whatever ``python3`` the machine has, outside any virtual environment.
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
# Optional extras of pyproject.toml a package may add: each its own lock, on top of LOCK.
EXTRA_LOCKS = {"otel": ROOT / "requirements-otel.lock"}
LAMBDA_PYTHON = "3.12"
OLDEST_PYTHON = "3.11"  # pyproject's requires-python: the lock must install there too
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# Lambda's Python 3.12 runs on Amazon Linux 2023 (glibc 2.34). pip takes --platform tags as
# given, without the older ones they imply, so every glibc from 2.17 to 2.34 is listed.
_MANYLINUX = tuple(f"manylinux_2_{minor}" for minor in range(34, 16, -1))
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}

# Never loaded by the function: the file watcher of `chainserve dev`, the emulator, this builder.
# watchfiles: `dev` reloading; hypercorn and the HTTP/2 and WebSocket parts it brings: the emulator.
_UNUSED_PACKAGES = ("watchfiles", "hypercorn", "h2", "hpack", "hyperframe", "priority", "wsproto")
_UNUSED_SERVICE_PARTS = ("emulator", "deploy")
# botocore ships every AWS service's model (~25 MB); the function calls only these.
_BOTOCORE_SERVICES = (
    "bedrock-runtime",
    "bedrock",
    "ssm",
    "secretsmanager",
    "sts",
    "sso",
    "sso-oidc",
)


@dataclass(frozen=True)
class Target:
    """What the package is for: Lambda's (architecture, Python), or this machine's."""

    architecture: str | None = "arm64"  # None: this machine
    python: str = LAMBDA_PYTHON  # with architecture None, give this machine's

    def pip_flags(self) -> list[str]:
        if self.architecture is None:
            return []
        machine = ARCHITECTURES[self.architecture]
        flags = [f"--platform={tag}_{machine}" for tag in _MANYLINUX]
        return [*flags, "--implementation=cp", f"--python-version={self.python}"]


class PackageTooLarge(Exception):
    pass


def lay_out(
    into: Path, target: Target, wheels: Path | None = None, extras: tuple[str, ...] = ()
) -> int:
    """Fill ``into`` as Lambda's task root, with ``extras`` (names of :data:`EXTRA_LOCKS`);
    returns its size in bytes (unzipped)."""
    into.mkdir(parents=True, exist_ok=True)
    source = ["--no-index", f"--find-links={wheels}"] if wheels else []
    extra_locks = [f"--requirement={EXTRA_LOCKS[extra]}" for extra in extras]
    _pip(
        "install",
        "--quiet",
        "--no-compile",
        "--no-deps",
        "--only-binary=:all:",
        f"--target={into}",
        f"--requirement={LOCK}",
        *extra_locks,
        *source,
        *target.pip_flags(),
    )
    _prune_packages(into)
    shutil.copytree(
        ROOT / "service",
        into / "service",
        ignore=shutil.ignore_patterns("__pycache__", *_UNUSED_SERVICE_PARTS),
    )
    (into / "chains").mkdir(exist_ok=True)
    for chain in sorted((ROOT / "chains").glob("*.y*ml")):
        shutil.copy2(chain, into / "chains" / chain.name)
    shutil.copy2(ROOT / "run.sh", into / "run.sh")
    (into / "run.sh").chmod(0o755)
    if target.python == "{}.{}".format(*sys.version_info[:2]):
        # Lambda's task root is read-only: without byte code shipped, every cold start
        # compiles every module again. Hash-checked, as the zip's timestamps are fixed.
        compileall.compile_dir(
            into,
            quiet=1,
            workers=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )
    else:
        print(
            f"note: no byte code (this is Python {sys.version_info[0]}.{sys.version_info[1]}, "
            f"the function runs {target.python}); build with {target.python} for faster cold "
            "starts",
            file=sys.stderr,
        )
    size = sum(path.stat().st_size for path in into.rglob("*") if path.is_file())
    if size > LAMBDA_UNZIPPED_LIMIT:
        raise PackageTooLarge(f"{_mb(size)} unzipped: over Lambda's limit of 250 MB")
    return size


def write_zip(folder: Path, zip_path: Path) -> None:
    """A reproducible zip: sorted entries, fixed timestamps, run.sh executable."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(folder)), date_time=(1980, 1, 1, 0, 0, 0))
            mode = 0o755 if os.access(path, os.X_OK) else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())


def update_lock() -> None:
    """Resolve ``pyproject.toml`` into ``requirements.lock``.

    Resolved for the oldest supported Python, so the same pins install on developers'
    machines and CI (tests build the package for the local Python) and on Lambda's Python,
    which is then checked for both architectures.
    """
    resolved = {arch: _resolve(Target(arch, OLDEST_PYTHON)) for arch in ARCHITECTURES}
    if resolved["arm64"] != resolved["x86_64"]:
        raise SystemExit("the two architectures resolve differently; lock them separately")
    lines = [
        "# The function's dependencies, resolved from pyproject.toml for Python "
        f"{OLDEST_PYTHON} and checked to install",
        f"# on Lambda's Python {LAMBDA_PYTHON} (arm64, x86_64). "
        "Regenerate with: chainserve package --update-lock",
        *[f"{name}=={version}" for name, version in sorted(resolved["arm64"].items())],
    ]
    LOCK.write_text("\n".join(lines) + "\n")
    for arch in ARCHITECTURES:
        _resolve(Target(arch), f"--requirement={LOCK}", "--no-deps")
    for extra in EXTRA_LOCKS:
        update_extra_lock(extra, resolved["arm64"])


def update_extra_lock(extra: str, base: dict[str, str]) -> None:
    """Pin what ``chainserve[extra]`` adds to ``base`` (the function's lock) in its own lock,
    resolved with the function's lock as constraints."""
    constrained = (f"{ROOT}[{extra}]", f"--constraint={LOCK}")
    resolved = {arch: _resolve(Target(arch, OLDEST_PYTHON), *constrained) for arch in ARCHITECTURES}
    if resolved["arm64"] != resolved["x86_64"]:
        raise SystemExit(f"[{extra}]: the two architectures resolve differently")
    pinned = {_normal(name) for name in base}
    added = {n: v for n, v in resolved["arm64"].items() if _normal(n) not in pinned}
    lines = [
        f"# What chainserve[{extra}] adds to requirements.lock (chainserve package --extra "
        f"{extra}), resolved",
        "# with requirements.lock as constraints. Regenerate with: chainserve package --update-lock",
        *[f"{name}=={version}" for name, version in sorted(added.items())],
    ]
    EXTRA_LOCKS[extra].write_text("\n".join(lines) + "\n")


def _normal(name: str) -> str:
    """A package name as PEP 503 compares them (``fastapi_offline`` is ``fastapi-offline``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _resolve(target: Target, *what: str) -> dict[str, str]:
    """What pip would install for ``target`` (default: this project and its dependencies)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        _pip(
            "install",
            "--quiet",
            "--dry-run",
            "--ignore-installed",
            "--only-binary=:all:",
            f"--report={report}",
            f"--target={scratch}/target",
            *target.pip_flags(),
            *(what or [str(ROOT)]),
        )
        installs = json.loads(report.read_text())["install"]
    return {
        item["metadata"]["name"].lower(): item["metadata"]["version"]
        for item in installs
        if item["metadata"]["name"].lower() != "chainserve"
    }


def _prune_packages(into: Path) -> None:
    for name in _UNUSED_PACKAGES:
        shutil.rmtree(into / name, ignore_errors=True)
    # Of Powertools the function uses only the EMF metrics provider (CHAINSERVE_METRICS=emf,
    # service/observability/emf.py): its event handlers and utilities (3 MB) go.
    powertools = into / "aws_lambda_powertools"
    for part in ("event_handler", "middleware_factory", "metrics/provider/datadog"):
        shutil.rmtree(powertools / part, ignore_errors=True)
    utilities = powertools / "utilities"
    if utilities.is_dir():
        for path in utilities.iterdir():
            if path.name not in ("__init__.py", "jmespath_utils"):
                (shutil.rmtree if path.is_dir() else Path.unlink)(path)
    # /docs serves Swagger UI from fastapi_offline; ReDoc is off (service/protocols/docs.py).
    (into / "fastapi_offline" / "static" / "redoc.standalone.js").unlink(missing_ok=True)
    # Stray byte code goes (it is compiled afresh, for the right Python, or not at all), and
    # so do packages' own test suites (numpy ships 8 MB of them): never imported.
    for pattern in ("__pycache__", "*/tests"):
        for path in list(into.glob(f"*/**/{pattern}")):
            shutil.rmtree(path, ignore_errors=True)
    data = into / "botocore" / "data"
    if data.is_dir():
        for service in data.iterdir():
            if service.is_dir() and service.name not in _BOTOCORE_SERVICES:
                shutil.rmtree(service)


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args], check=True)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="chainserve package", description="Build the Lambda zip package (no Docker needed)."
    )
    parser.add_argument(
        "--arch",
        choices=[*ARCHITECTURES, "native"],
        default="arm64",
        help="Lambda architecture; native: this machine (for local tests)",
    )
    parser.add_argument("--python", default=LAMBDA_PYTHON, help="Lambda's Python version")
    parser.add_argument("--output", type=Path, help="zip file (default: build/chainserve-ARCH.zip)")
    parser.add_argument("--into", type=Path, help="lay the task root out here instead of zipping")
    parser.add_argument("--wheels", type=Path, help="install from this folder of wheels only")
    parser.add_argument(
        "--extra",
        action="append",
        choices=sorted(EXTRA_LOCKS),
        default=[],
        help="add an optional extra (otel: OpenTelemetry traces); may be given again",
    )
    parser.add_argument("--update-lock", action="store_true", help="re-resolve requirements.lock")
    args = parser.parse_args(argv)
    if args.update_lock:
        update_lock()
        print(f"wrote {LOCK}")
        return 0
    if args.arch == "native":
        target = Target(None, "{}.{}".format(*sys.version_info[:2]))
    else:
        target = Target(args.arch, args.python)
    try:
        if args.into:
            size = lay_out(args.into, target, args.wheels, tuple(args.extra))
            print(f"{args.into}: {_mb(size)} unzipped")
            return 0
        output = args.output or ROOT / "build" / f"chainserve-{args.arch}.zip"
        with tempfile.TemporaryDirectory() as scratch:
            size = lay_out(Path(scratch) / "task", target, args.wheels, tuple(args.extra))
            write_zip(Path(scratch) / "task", output)
    except PackageTooLarge as exc:
        print(f"chainserve package: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"chainserve package: pip failed ({exc.returncode})", file=sys.stderr)
        return 1
    print(f"{output}: {_mb(size)} unzipped, {_mb(output.stat().st_size)} zipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
