"""Fixtures shared by tests/ and compat-tests/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli.testing import FerryServer


@pytest.fixture
def ferrymq_server(tmp_path: Path) -> Iterator[FerryServer]:
    """A real ``ferrymq serve`` process on free ports in a temporary directory."""
    server = FerryServer(tmp_path / "ferrymq")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[FerryServer]]:
    """Start servers with custom broker.conf text: ``server_factory(path, "flushDiskType=SYNC_FLUSH")``."""
    started: list[FerryServer] = []

    class Factory(FerryServer):
        def start(self) -> FerryServer:
            started.append(self)
            return super().start()

    try:
        yield Factory
    finally:
        for s in started:
            s.stop()
