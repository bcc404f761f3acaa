"""The topics file is written off the event loop, bursts coalesced (core/persist.py's
BackgroundJsonWriter under TopicConfigManager), and a burst of topic changes costs one name-server
registration, not one per topic. In-process: writes and registrations are counted."""

from __future__ import annotations

import asyncio
import errno
import json
from pathlib import Path
from typing import Any

import pytest

from ferrymq.core import persist
from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.topic_config import TopicConfigManager
from ferrymq.core.config import BrokerConfig
from ferrymq.core.persist import BackgroundJsonWriter
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import RegisterBrokerBody, TopicConfig
from ferrymq.core.remoting.transport import RemotingConnection, connect, serve


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    writes: list[Path] = []
    real = persist.write_json_atomic

    def counted(path: Path, data: Any) -> None:
        writes.append(path)
        real(path, data)

    monkeypatch.setattr(persist, "write_json_atomic", counted)
    return writes


def test_a_burst_of_1000_topic_creations_is_one_or_two_writes_of_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "topics.json"
    config = BrokerConfig(store_path_root_dir=tmp_path)

    async def main() -> None:
        topics = TopicConfigManager(path, config)
        await topics.wait_persisted()
        writes = _count_writes(monkeypatch)
        for i in range(1000):
            assert topics.update(TopicConfig(f"t{i}", 1, 1))
        assert not topics.update(TopicConfig("t0", 1, 1))  # unchanged: nothing to write
        await topics.wait_persisted()
        assert 1 <= len(writes) <= 2
        on_disk = json.loads(path.read_text())
        assert {f"t{i}" for i in range(1000)} <= set(on_disk["topicConfigTable"])
        assert on_disk["dataVersion"] == topics.data_version.to_json()

    asyncio.run(main())
    assert "t999" in TopicConfigManager(path, config).topics


def test_a_write_numbered_older_than_the_file_never_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    writer = BackgroundJsonWriter(path, lambda: None)
    writer._write(2, {"newer": True})
    writer._write(1, {"older": True})  # a slower thread finishing late
    assert json.loads(path.read_text()) == {"newer": True}


def test_a_failed_write_fails_its_waiters_and_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "f.json"
    state = {"n": 0}
    real = persist.write_json_atomic
    failures = [OSError(errno.ENOSPC, "No space left on device")]

    def flaky(p: Path, data: Any) -> None:
        if failures:
            raise failures.pop()
        real(p, data)

    monkeypatch.setattr(persist, "write_json_atomic", flaky)

    async def main() -> None:
        writer = BackgroundJsonWriter(path, lambda: dict(state), retry_s=0.01)
        state["n"] = 1
        writer.changed()
        with pytest.raises(OSError, match="No space"):
            await writer.wait()
        state["n"] = 2
        await writer.wait(writer.changed())
        assert not writer.pending

    asyncio.run(main())
    assert json.loads(path.read_text()) == {"n": 2}


def test_update_and_create_topic_replies_after_the_file_holds_it(tmp_path: Path) -> None:
    async def main() -> None:
        broker = Broker(BrokerConfig(listen_port=0, listen_host="127.0.0.1", store_path_root_dir=tmp_path))
        await broker.start()
        try:
            conn = await connect("127.0.0.1", broker.port)
            fields = {"topic": "MadeByAdmin", "readQueueNums": "4", "writeQueueNums": "4", "perm": "6"}
            resp = await conn.invoke(
                RemotingCommand(code=RequestCode.UPDATE_AND_CREATE_TOPIC, ext_fields=fields)
            )
            assert resp.code == ResponseCode.SUCCESS, resp.remark
            on_disk = json.loads((tmp_path / "config" / "topics.json").read_text())
            assert on_disk["topicConfigTable"]["MadeByAdmin"]["writeQueueNums"] == 4
            conn.close()
        finally:
            await broker.stop()

    asyncio.run(main())


def test_a_burst_of_topic_creations_is_one_name_server_registration(tmp_path: Path) -> None:
    registered: list[int] = []  # topics per REGISTER_BROKER
    seen = asyncio.Event

    async def main() -> None:
        burst_seen = seen()

        def fake_namesrv(cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand | None:
            if cmd.code == RequestCode.REGISTER_BROKER:
                registered.append(len(RegisterBrokerBody.decode(cmd.body, False).topic_configs))
                if registered[-1] > 1000:
                    burst_seen.set()
            return cmd.response(ResponseCode.SUCCESS)

        ns = await serve(fake_namesrv, "127.0.0.1", 0)
        ns_port = ns.sockets[0].getsockname()[1]
        config = BrokerConfig(
            listen_port=0,
            listen_host="127.0.0.1",
            store_path_root_dir=tmp_path,
            namesrv_addr=f"127.0.0.1:{ns_port}",
        )
        broker = Broker(config)
        await broker.start()
        try:
            before = len(registered)
            for i in range(1000):
                tc = TopicConfig(f"burst{i}", 1, 1)
                broker.topics.update(tc)
                broker.topic_created(tc)
            async with asyncio.timeout(30):
                await burst_seen.wait()
            await asyncio.sleep(0.2)  # a second registration, if any, would come now
            assert len(registered) - before == 1
        finally:
            await broker.stop()
            ns.close()

    asyncio.run(main())
