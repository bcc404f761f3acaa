"""Blocking one-shot RocketMQ requests to running servers (make a topic on one broker, count a
queue's messages, read a topic's route from a name server) and a bounded wait, for tests with
several broker groups or a crash. Holds no tests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from ferrymq.cli.testing import FerryBroker
from ferrymq.client import LitePullConsumer, MessageExt
from ferrymq.client._remote import request
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import TopicRouteData
from ferrymq.core.remoting.transport import connect, split_addr


def call(addr: str, code: int, ext: dict[str, str], body: bytes = b"") -> RemotingCommand:
    """One request on a fresh connection to ``addr``: the response."""

    async def go() -> RemotingCommand:
        host, port = split_addr(addr)
        conn = await connect(host, port)
        try:
            return await conn.invoke(request(code, ext, body))
        finally:
            conn.close()

    return asyncio.run(go())


def invoke(addr: str, code: int, ext: dict[str, str]) -> tuple[int, bytes, str | None]:
    """One request on a fresh connection to ``addr``: the response's code, body and remark."""
    resp = call(addr, code, ext)
    return resp.code, bytes(resp.body), resp.remark


def create_group(broker_addr: str, group: str, **fields: object) -> None:
    """UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on one broker, as mqadmin updateSubGroup sends it."""
    body = json.dumps({"groupName": group, **fields}).encode()
    resp = call(broker_addr, RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, {}, body)
    assert resp.code == ResponseCode.SUCCESS, resp.remark


def topic_fields(topic: str, queues: int = 4, *, order: bool = False) -> dict[str, str]:
    """The UPDATE_AND_CREATE_TOPIC header mqadmin updateTopic sends."""
    return {
        "topic": topic,
        "defaultTopic": "TBW102",
        "readQueueNums": str(queues),
        "writeQueueNums": str(queues),
        "perm": "6",
        "topicFilterType": "SINGLE_TAG",
        "topicSysFlag": "0",
        "order": "true" if order else "false",
    }


def create_topic(broker_addr: str, topic: str, queues: int = 4, *, order: bool = False) -> None:
    """UPDATE_AND_CREATE_TOPIC on one broker, as mqadmin updateTopic does."""
    code, _, remark = invoke(
        broker_addr, RequestCode.UPDATE_AND_CREATE_TOPIC, topic_fields(topic, queues, order=order)
    )
    assert code == ResponseCode.SUCCESS, remark


def max_offset(broker_addr: str, topic: str, queue: int) -> int:
    """GET_MAX_OFFSET: how many messages the broker's queue holds."""
    resp = call(broker_addr, RequestCode.GET_MAX_OFFSET, {"topic": topic, "queueId": str(queue)})
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    return int(resp.ext_fields["offset"])


def routed(namesrv_addr: str, topic: str) -> TopicRouteData | None:
    """The name server's route of ``topic``; None while it has none (any answer but SUCCESS)."""
    code, body, _ = invoke(namesrv_addr, RequestCode.GET_ROUTEINFO_BY_TOPIC, {"topic": topic})
    return TopicRouteData.from_json_bytes(body) if code == ResponseCode.SUCCESS else None


def eventually(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Bounded re-check of a condition no event announces (a broker registering its topics)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.05)


# ---- controller mode ------------------------------------------------------------------------------


def controller_broker(
    data_dir: Path, ns_addr: str, group: str, identity: int, *, kafka: bool = False, **conf: str
) -> FerryBroker:
    """A controller-mode broker of ``group`` (SYNC_MASTER when elected) with short timers."""
    base = {
        "enableControllerMode": "true",
        "controllerAddr": ns_addr,
        "brokerId": str(identity),
        "brokerRole": "SYNC_MASTER",
        "controllerHeartBeatTimeoutMills": "2000",
        "brokerHeartbeatInterval": "200",
        "syncBrokerMetadataPeriod": "200",
    }
    return FerryBroker(data_dir / f"b{identity}", ns_addr, group, kafka=kafka, conf=base | conf)


def replica_info(ns_addr: str, group: str) -> tuple[str | None, set[int], int]:
    """The controller's live master address, in-sync set and master epoch of ``group``."""
    resp = call(ns_addr, RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": group})
    if resp.code != 0:
        return None, set(), 0
    sset = set(json.loads(bytes(resp.body))["syncStateSet"])
    return resp.ext_fields.get("masterAddress"), sset, int(resp.ext_fields.get("masterEpoch") or 0)


def elected(ns_addr: str, group: str, brokers: list[FerryBroker]) -> FerryBroker:
    """The master the controller elects among ``brokers``, once all of them are in sync."""
    by_addr = {b.addr: b for b in brokers}
    eventually(lambda: replica_info(ns_addr, group)[0] in by_addr, 20, "a master elected")
    ids = set(range(1, len(brokers) + 1))
    eventually(lambda: replica_info(ns_addr, group)[1] == ids, 20, "every replica in the in-sync set")
    return by_addr[replica_info(ns_addr, group)[0] or ""]


def read_topic(namesrv_addr: str, topic: str, want: int, timeout: float = 15.0) -> list[MessageExt]:
    """Up to ``want`` messages of ``topic`` from its first offset, read by a new LitePullConsumer group
    (each poll waits on the consumer's arrival event; returns early once ``want`` arrived)."""
    consumer = LitePullConsumer(namesrv_addr, group=f"cg-{uuid.uuid4().hex[:8]}", consume_from="FIRST_OFFSET")
    consumer.subscribe(topic, "*")
    consumer.start()
    got: list[MessageExt] = []
    try:
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            got += consumer.poll(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
    finally:
        consumer.shutdown()
    return got
