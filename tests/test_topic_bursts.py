"""Bursts of topic creation against a real ``ferrymq serve``: one HEART_BEAT naming 1,000 consumer
groups (a %RETRY% topic each) and one Kafka Metadata request auto-creating hundreds of topics.

A bystander client sends and pulls in a loop meanwhile; its longest round trip is the broker's
stall. Creation used to rewrite and fsync the whole topics file per topic on the event loop
(quadratic: seconds for 1,000). The bound below is generous for a loaded 2-core CI machine.
The created topics must survive a restart (kill -9 for the heartbeat: its reply waits for the
topics file, as RocketMQ persists it in the request's thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.remoting_helpers import pull, send_v2
from tests.test_kafka_frontend import Wire, metadata

#: the longest send+pull round trip a bystander may see while a burst is created
MAX_STALL_S = 0.5
GROUPS = 1000
KAFKA_TOPICS = 400
BYSTANDER_TOPIC = "BurstBystander"


def _addr(server: FerryServer) -> tuple[str, int]:
    host, port = server.broker_addr.rsplit(":", 1)
    return host, int(port)


def heartbeat_groups(client_id: str, groups: list[str]) -> RemotingCommand:
    """One HEART_BEAT naming every group in ``groups`` as a clustering push consumer."""
    consumers = [
        {
            "groupName": g,
            "consumeType": "CONSUME_PASSIVELY",
            "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
            "subscriptionDataSet": [{"topic": BYSTANDER_TOPIC, "subString": "*", "subVersion": 1}],
        }
        for g in groups
    ]
    body = {"clientID": client_id, "producerDataSet": [], "consumerDataSet": consumers}
    return RemotingCommand(code=RequestCode.HEART_BEAT, body=orjson.dumps(body))


async def _bystander(conn: RemotingConnection, started: asyncio.Event, stop: asyncio.Event) -> float:
    """Send and pull in a loop until ``stop``; returns the longest round trip (seconds)."""
    worst = 0.0
    rounds = 0
    while not stop.is_set():
        t0 = time.monotonic()
        resp = await conn.invoke(send_v2(BYSTANDER_TOPIC, b"tick", 0, None, 1), timeout=60)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        got = await conn.invoke(pull(BYSTANDER_TOPIC, 0, int(resp.ext_fields["queueOffset"])), timeout=60)
        assert got.code == ResponseCode.SUCCESS, got.remark
        worst = max(worst, time.monotonic() - t0)
        rounds += 1
        if rounds == 5:
            started.set()
    return worst


async def _with_bystander(server: FerryServer, burst: Callable[[], Awaitable[None]]) -> float:
    """Run ``burst`` while a bystander sends and pulls; the bystander's longest round trip."""
    conn = await connect(*_addr(server))
    with contextlib.closing(conn):
        started, stop = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(_bystander(conn, started, stop))
        await started.wait()
        t0 = time.monotonic()
        await burst()
        print(f"burst took {time.monotonic() - t0:.3f} s")
        await asyncio.sleep(0.3)  # what the burst left behind (writes, registration) also runs
        stop.set()
        return await task


async def _all_topics(server: FerryServer) -> set[str]:
    conn = await connect(*_addr(server))
    with contextlib.closing(conn):
        resp = await conn.invoke(RemotingCommand(code=RequestCode.GET_ALL_TOPIC_CONFIG), timeout=30)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        return set(json.loads(resp.body)["topicConfigTable"])


def test_a_heartbeat_naming_1000_groups_does_not_stall_others_and_its_retry_topics_survive_kill_9(
    tmp_path: Path,
) -> None:
    groups = [f"burst-group-{i}" for i in range(GROUPS)]
    retry = {f"%RETRY%{g}" for g in groups}
    with FerryServer(tmp_path / "ferrymq") as server:

        async def burst() -> None:
            conn = await connect(*_addr(server))
            with contextlib.closing(conn):
                resp = await conn.invoke(heartbeat_groups("burst-client", groups), timeout=120)
                assert resp.code == ResponseCode.SUCCESS, resp.remark

        worst = asyncio.run(_with_bystander(server, burst))
        print(f"bystander's longest send+pull during a {GROUPS}-group heartbeat: {worst * 1000:.0f} ms")
        assert worst < MAX_STALL_S
        server.kill()
        server.start()
        assert retry <= asyncio.run(_all_topics(server))


def test_kafka_metadata_auto_creating_hundreds_of_topics_does_not_stall_others(tmp_path: Path) -> None:
    names = [f"burst-kafka-{i}" for i in range(KAFKA_TOPICS)]
    with FerryServer(tmp_path / "ferrymq") as server:

        async def burst() -> None:
            wire = await Wire.open(server.kafka_port)
            try:
                resp = await asyncio.wait_for(wire.call(metadata(*names)), 120)
            finally:
                wire.close()
            assert {t.name for t in resp.topics} == set(names)

        worst = asyncio.run(_with_bystander(server, burst))
        print(f"bystander's longest send+pull during a {KAFKA_TOPICS}-topic Metadata: {worst * 1000:.0f} ms")
        assert worst < MAX_STALL_S
        server.restart()
        assert set(names) <= asyncio.run(_all_topics(server))
