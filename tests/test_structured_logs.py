"""``--log-format json`` and per-component levels (cli/logsetup.py): one JSON object per line,
with the peer (and request code, Kafka API key, topic, group where the log site knows them)."""

from __future__ import annotations

import io
import json
import logging
import socket
from pathlib import Path

import pytest

from ferrymq.cli.logsetup import configure_logging, parse_levels
from ferrymq.cli.testing import FerryServer


def test_levels_spec() -> None:
    assert parse_levels("INFO") == ("INFO", {})
    assert parse_levels("ferrymq.kafka=DEBUG, ferrymq.store=warning") == (
        None,
        {"ferrymq.kafka": "DEBUG", "ferrymq.store": "WARNING"},
    )
    assert parse_levels("WARNING,ferrymq.kafka=DEBUG") == ("WARNING", {"ferrymq.kafka": "DEBUG"})
    with pytest.raises(ValueError, match="LOUD"):
        parse_levels("ferrymq.kafka=LOUD")


def test_json_lines_carry_the_extras() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("ferrymq.kafka").level)
    try:
        configure_logging("json", "ferrymq.kafka=DEBUG,ERROR", out)
        logging.getLogger("ferrymq.kafka").debug("hello %s", "you", extra={"peer": "1.2.3.4:5", "api_key": 3})
        logging.getLogger("ferrymq.store").info("dropped: root is at ERROR")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("ferrymq.broker").exception("failed", extra={"topic": "T", "group": "G"})
    finally:
        root.handlers[:], _, _ = saved
        root.setLevel(saved[1])
        logging.getLogger("ferrymq.kafka").setLevel(saved[2])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert (first["level"], first["logger"], first["message"]) == ("DEBUG", "ferrymq.kafka", "hello you")
    assert first["peer"] == "1.2.3.4:5" and first["api_key"] == 3 and first["time"].endswith("Z")
    assert second["topic"] == "T" and second["group"] == "G" and "RuntimeError: boom" in second["exc"]


def _garbage(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\xff\xff\xff\xffnot a frame at all")
        s.settimeout(5)
        assert s.recv(100) == b""  # the server closes it


def test_serve_json_logs_name_the_peer(tmp_path: Path) -> None:
    args = ["--log-format", "json", "--log-level", "INFO,ferrymq.kafka=DEBUG"]
    with FerryServer(tmp_path / "f", extra_args=args) as server:
        _garbage(server.broker_port)
        _garbage(server.kafka_port)
        server.stop()
    records = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    remoting = [r for r in records if r["logger"] == "ferrymq.remoting" and "peer" in r]
    kafka = [r for r in records if r["logger"].startswith("ferrymq.kafka") and "peer" in r]
    assert remoting and remoting[0]["peer"].startswith("127.0.0.1:"), records
    assert kafka and kafka[0]["peer"].startswith("127.0.0.1:"), records


def test_broker_conf_keys(tmp_path: Path) -> None:
    conf = "logFormat=json\nlogLevel=WARNING\n"
    with FerryServer(tmp_path / "f", conf) as server:
        _garbage(server.broker_port)
        server.stop()
    records = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.strip()]
    assert records and all(r["level"] in ("WARNING", "ERROR", "CRITICAL") for r in records), records
