"""``pip install ferrymq[testing]`` is all a user needs: build the wheel, install it with the
``testing`` extra and off-the-shelf clients from PyPI into a FRESH virtualenv, and run a user's
test file (tests/user_suite/) there with plain ``pytest``: the fixtures must come from the
wheel's ``pytest11`` entry point, with nothing of this repository on the path.

Skipped, loudly, only when PyPI cannot be reached; under CI=true it must run (conftest.py).
pip's cache keeps a repeat run to about half a minute.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.parse
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.process, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "tests" / "user_suite" / "test_user_suite_sample.py"
CLIENTS = ["kafka-python>=3.0", "confluent-kafka>=2.16", "aiokafka>=0.14"]
#: what the build copies: the package folders and the files setup.py and pyproject.toml read
SOURCES = ("core", "namesrv", "gateway", "client", "cli", "setup.py", "pyproject.toml", "README.md")


def _index_reachable() -> str | None:
    """None when pip's index answers a TCP connect, else why not."""
    url = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple")
    parsed = urllib.parse.urlsplit(url)
    host = parsed.hostname or "pypi.org"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as exc:
        return f"{host}:{port} unreachable ({exc})"


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    )
    return out.stdout


@dataclass
class Installed:
    """The wheel built and installed with its testing extra into a fresh virtualenv."""

    wheel: Path
    python: str
    env: dict[str, str]
    work: Path


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def build_and_install(work: Path) -> Installed:
    """Copy the sources, build the wheel, make a fresh virtualenv and install the wheel there.

    Mostly waiting on PyPI, so conftest.py starts it in a thread as soon as this test is collected
    and the test only waits for it (the whole suite must stay under 20 minutes)."""
    env = _env()
    src = work / "src"  # a copy: the build leaves build/ and *.egg-info behind
    src.mkdir(parents=True)
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    dist = work / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)], work, env)
    [wheel] = dist.glob("ferrymq-*.whl")
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], work, env)
    py = str(venv / "bin" / "python")
    _run([py, "-m", "pip", "install", "-q", f"{wheel}[testing]", *CLIENTS], work, env)
    return Installed(wheel, py, env, work)


_started: dict[str, Future[Installed]] = {}


def start_build() -> None:
    """Begin build_and_install in the background (once per session), when PyPI answers."""
    if not _started and _index_reachable() is None:
        work = Path(tempfile.mkdtemp(prefix="ferrymq-wheel-"))
        pool = ThreadPoolExecutor(1, thread_name_prefix="wheel-build")
        _started["build"] = pool.submit(build_and_install, work)
        pool.shutdown(wait=False)


def test_user_suite_passes_in_a_fresh_virtualenv_from_the_wheel(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    why = _index_reachable()
    if why is not None:
        print(
            f"\n!!! PyPI is not reachable: the wheel's user-suite test is SKIPPED ({why}) !!!",
            file=sys.stderr,
        )
        pytest.skip(f"PyPI not reachable: {why}")
    start_build()  # already running when the session collected this test
    installed = _started["build"].result(timeout=900)
    request.addfinalizer(lambda: shutil.rmtree(installed.work, ignore_errors=True))
    wheel, py, env = installed.wheel, installed.python, installed.env
    with zipfile.ZipFile(wheel) as zf:  # the console's charting library ships with it (package-data)
        names = set(zf.namelist())
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE", "console.js"):
        assert f"ferrymq/gateway/admin/static/{name}" in names, name
    for name in ("service_pb2.py", "LICENSE", "NOTICE"):  # the vendored gRPC code, with its license
        assert f"ferrymq/gateway/grpc/protocol/{name}" in names, name

    user = tmp_path / "user"  # no conftest.py, no repository on the path
    user.mkdir()
    shutil.copy2(SAMPLE, user / SAMPLE.name)
    # the plugin is loaded by the entry point: `pytest --trace-config` lists it
    listed = _run([py, "-m", "pytest", "--co", "-q", "--trace-config", "-p", "no:cacheprovider"], user, env)
    assert "ferrymq.cli.pytest_plugin" in listed
    cmd = [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings", SAMPLE.name]
    out = _run(cmd, user, env, timeout=300)  # exit status 0: nothing failed
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), out  # and nothing skipped
