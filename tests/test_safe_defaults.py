"""Safe defaults: every listener binds loopback unless told otherwise, and a broker told to bind
beyond loopback logs one warning naming each listener that lets anyone in."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ferrymq.cli.exposure import OpenListener, open_listeners
from ferrymq.cli.main import BrokerProcess, _parser
from ferrymq.core.broker.routes_source import LocalRoutes
from ferrymq.core.config import BrokerConfig
from ferrymq.namesrv import NameServer


def test_everything_binds_loopback_by_default() -> None:
    assert BrokerConfig().listen_host == "127.0.0.1"
    assert NameServer().host == "127.0.0.1"
    assert _parser().parse_args(["namesrv"]).host == "127.0.0.1"
    assert _parser().parse_args(["serve"]).host == "127.0.0.1"


def test_open_listeners_are_those_beyond_loopback_without_auth() -> None:
    listeners = [
        OpenListener("remoting", "0.0.0.0", 1),
        OpenListener("kafka PLAINTEXT", "127.0.0.1", 2),
        OpenListener("admin", "10.0.0.1", 3, authenticated=True),
        OpenListener("HA", "localhost", 4),
        OpenListener("kafka SSL", "broker.example", 5),
    ]
    assert [lst.port for lst in open_listeners(listeners)] == [1, 5]


def test_a_broker_beyond_loopback_warns_naming_each_open_listener(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ferrymq.cli.exposure import warn_open_listeners

    async def main() -> list[OpenListener]:
        ns = NameServer("127.0.0.1", 0)
        await ns.start()
        config = BrokerConfig.build(
            {
                "listenHost": "0.0.0.0",
                "listenPort": 0,
                "storePathRootDir": tmp_path / "store",
                "namesrvAddr": f"127.0.0.1:{ns.port}",
                "kafkaListenPort": 0,
                "adminPort": 0,
                "adminToken": "t",
            }
        )
        process = BrokerProcess(config, "127.0.0.1")
        await process.start(LocalRoutes(ns.routes, f"127.0.0.1:{ns.port}"))
        try:
            listeners = process.listeners()
            warn_open_listeners(listeners)
            return listeners
        finally:
            await process.stop()
            await ns.stop()

    with caplog.at_level(logging.WARNING, logger="ferrymq.security"):
        listeners = asyncio.run(asyncio.wait_for(main(), 60))
    [line] = [r.getMessage() for r in caplog.records if r.name == "ferrymq.security"]
    named = {lst.name for lst in listeners}
    assert {"remoting", "HA", "kafka PLAINTEXT", "admin"} <= named
    for lst in listeners:
        assert (f"{lst.name} 0.0.0.0:{lst.port}" in line) == (lst.name != "admin"), (lst, line)
