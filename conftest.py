"""Fixtures shared by tests/ and compat-tests/, and the ``process`` marker that splits them.

A test is marked ``process`` when it starts other processes (a ``ferrymq`` server or broker, a
JVM, a CLI run): everything in compat-tests/, every module that refers to ferrymq.cli.testing's
launchers, and every test that uses one of the server fixtures below. The rest run in this
interpreter and make up ``make test-fast`` (``-m "not process and not slow"``).
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli import testing as launchers
from ferrymq.cli.testing import FerryServer

#: the servers the conftest fixtures have running now, whose log tails a failed test shows
_RUNNING: list[FerryServer] = []


@contextlib.contextmanager
def _running(server: FerryServer) -> Iterator[None]:
    _RUNNING.append(server)
    try:
        yield
    finally:
        _RUNNING.remove(server)


# hundreds of test stores with 1 GiB segments: preallocated, they would fill the disk (the tests
# of preallocation and full disks turn it back on: fault_fs.FaultyDisk, test_disk_full.py)
os.environ.setdefault("FERRYMQ_SPARSE_SEGMENTS", "1")

#: fixtures that start a ferrymq process: a test using one (even indirectly) is a ``process`` test
PROCESS_FIXTURES = frozenset({"ferrymq_server", "server_factory", "shared_server", "server"})
#: the classes of ferrymq.cli.testing that spawn processes
LAUNCHERS = frozenset(
    obj for obj in vars(launchers).values() if inspect.isclass(obj) and obj.__module__ == launchers.__name__
)
ROOT = Path(__file__).parent


@pytest.fixture
def ferrymq_server(tmp_path: Path) -> Iterator[FerryServer]:
    """A real ``ferrymq serve`` process on free ports in a temporary directory."""
    with FerryServer(tmp_path / "ferrymq") as server, _running(server):
        yield server


@pytest.fixture(scope="module")
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FerryServer]:
    """One ``ferrymq serve`` for every test of a module, for tests that each leave it in a state the
    others tolerate (fast). Its broker.conf text is the module's ``FERRYMQ_CONF`` (default none)."""
    name = request.module.__name__.rsplit(".", 1)[-1]
    with (
        FerryServer(
            tmp_path_factory.mktemp(name) / "ferrymq", getattr(request.module, "FERRYMQ_CONF", "")
        ) as server,
        _running(server),
    ):
        yield server


@pytest.fixture(scope="module")
def server(shared_server: FerryServer) -> FerryServer:
    """``shared_server`` under the short name most modules use; a module may define its own."""
    return shared_server


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[FerryServer]]:
    """Start servers with custom broker.conf text: ``server_factory(path, "flushDiskType=SYNC_FLUSH")``."""
    started: list[FerryServer] = []

    class Factory(FerryServer):
        def start(self) -> FerryServer:
            started.append(self)
            _RUNNING.append(self)
            return super().start()

    try:
        yield Factory
    finally:
        for s in started:
            s.stop()
            if s in _RUNNING:
                _RUNNING.remove(s)


def _starts_processes(item: pytest.Item) -> bool:
    path = Path(str(item.path))
    if ROOT / "compat-tests" in path.parents:
        return True
    if PROCESS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return module is not None and any(
        obj in LAUNCHERS for obj in vars(module).values() if inspect.isclass(obj)
    )


#: tests that skip only when a tool is missing (a JDK, Maven, the built jars, Chromium, a client
#: library, root for network namespaces): under CI=true such a skip is a failure, so a CI machine
#: without the tool cannot pass
MUST_RUN_IN_CI = (
    ROOT / "compat-tests",
    ROOT / "tests" / "test_console_e2e.py",
    ROOT / "tests" / "test_netns_lab.py",
    ROOT / "tests" / "test_netns_faults.py",
    ROOT / "tests" / "test_wheel_user_suite.py",
)


def _must_run(path: Path) -> bool:
    return os.environ.get("CI") == "true" and any(p == path or p in path.parents for p in MUST_RUN_IN_CI)


def _skip_reason(longrepr: object) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (file, line, "Skipped: reason")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip(report: pytest.CollectReport | pytest.TestReport, what: str) -> None:
    reason = _skip_reason(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"CI=true: {what} may not be skipped in CI (the compat, browser and netns tests must run there; "
        f".ci/run installs what they need). It was skipped because: {reason}"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail") and _must_run(Path(str(item.path))):
        _fail_skip(report, item.nodeid)
    if report.failed and call.when == "call":
        _attach_server_logs(item, report)


def _attach_server_logs(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failed test shows the tail of each server log it used: CI keeps nothing else of them."""
    for server in _RUNNING:
        report.sections.append((f"ferrymq server log ({server.log_path}), last lines", server.log_tail(80)))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """A module skipped whole at import (pytest.importorskip of a client library)."""
    outcome = yield
    report: pytest.CollectReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and _must_run(Path(str(collector.path))):
        _fail_skip(report, collector.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the wheel build of tests/test_wheel_user_suite.py now, in the background, when that test
    will run: it mostly waits on PyPI, so the rest of the suite runs meanwhile."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        if item.nodeid.endswith("test_user_suite_passes_in_a_fresh_virtualenv_from_the_wheel"):
            start = getattr(getattr(item, "module", None), "start_build", None)
            if start is not None:
                start()
            return


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _starts_processes(item):
            item.add_marker(pytest.mark.process)
