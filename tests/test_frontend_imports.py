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


def test_a_broker_without_grpc_never_imports_grpcio() -> None:
    """grpcio and protobuf load only when the gRPC listener starts (``ferrymq serve`` start time)."""
    loaded = _loaded_after(
        ["ferrymq.cli.main", "ferrymq.cli.embedded"], ["grpc", "google.protobuf", "ferrymq.gateway.grpc"]
    )
    assert loaded == []


def test_grpc_frontend_loads_no_other_frontend() -> None:
    loaded = _loaded_after(
        ["ferrymq.gateway.grpc.frontend"], ["ferrymq.gateway.kafka", "ferrymq.gateway.admin", "fastapi"]
    )
    assert loaded == []


def test_every_served_api_version_has_schemas() -> None:
    """Schemas load on a version's first request, not at import: every advertised version must
    have kio request and response schemas, or a client would meet the gap at run time."""
    from kio.index import load_request_schema, load_response_schema

    from ferrymq.gateway.kafka.apis import API_HANDLERS

    for spec in API_HANDLERS.values():
        for v in range(spec.min_version, spec.max_version + 1):
            assert load_request_schema(spec.api_key, v) is not None
            assert load_response_schema(spec.api_key, v) is not None


@pytest.mark.parametrize("module", ["ferrymq.cli.main", "ferrymq.cli.embedded", "ferrymq.gateway.admin"])
def test_starting_loads_no_admin_app(module: str) -> None:
    """``ferrymq serve`` prints its ready line before FastAPI is imported (the admin app loads on
    the first connection to its already listening socket): the entry points must not import it."""
    loaded = _loaded_after([module], ["fastapi", "uvicorn", "ferrymq.gateway.admin.app"])
    assert loaded == []


def test_starting_loads_no_kafka_schemas_up_front() -> None:
    """The Kafka frontend's codec loads each request schema when first used."""
    loaded = _loaded_after(["ferrymq.gateway.kafka.frontend"], ["kio.schema.create_partitions.v1.response"])
    assert loaded == []
