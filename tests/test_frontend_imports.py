"""The two frontends never import each other: loading the Kafka frontend must not load the admin
REST app (FastAPI, uvicorn and every router were most of the Kafka listener's start-up time),
and the admin app must not load the Kafka frontend. Each import runs in a fresh interpreter,
so modules an earlier test imported cannot hide a regression."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _loaded_after(imports: list[str], watched: list[str]) -> list[str]:
    """Which of ``watched`` modules are in sys.modules after ``imports`` in a new interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {imports!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps([m for m in {watched!r} if m in sys.modules]))\n"
    )
    cmd = [sys.executable, "-c", code]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize("module", ["ferrymq.gateway.kafka.frontend", "ferrymq.gateway.kafka"])
def test_kafka_frontend_loads_no_admin_app(module: str) -> None:
    loaded = _loaded_after([module], ["fastapi", "uvicorn", "ferrymq.gateway.admin"])
    assert loaded == []


def test_kafka_frontend_loads_every_api() -> None:
    """The check above means something: the frontend's own modules are loaded by that import."""
    loaded = _loaded_after(
        ["ferrymq.gateway.kafka.frontend"],
        ["ferrymq.gateway.kafka.apis.api00_produce", "ferrymq.gateway.kafka.group.coordinator"],
    )
    assert loaded == ["ferrymq.gateway.kafka.apis.api00_produce", "ferrymq.gateway.kafka.group.coordinator"]


@pytest.mark.parametrize("module", ["ferrymq.gateway.admin", "ferrymq.gateway.admin.server"])
def test_admin_app_loads_no_kafka_frontend(module: str) -> None:
    loaded = _loaded_after([module, "ferrymq.gateway.admin.app"], ["ferrymq.gateway.kafka", "fastapi"])
    assert loaded == ["fastapi"]
