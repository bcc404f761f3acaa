"""Helpers for the consumer-side tests (retry, delay, locks, push consumers); holds no tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import MessageExt, decode_stored_messages
from ferrymq.core.remoting.transport import RemotingConnection, connect, split_addr
from tests import cluster_helpers
from tests.remoting_helpers import pull, send_v2

#: a small commit-log segment: crash recovery scans a segment, and 1 GiB ones take seconds
SMALL_LOG = "mappedFileSizeCommitLog=4194304\n"


def now_ms() -> int:
    return int(time.time() * 1000)


async def broker_conn(server: FerryServer) -> RemotingConnection:
    return await connect(*split_addr(server.broker_addr))


async def send(
    conn: RemotingConnection,
    topic: str,
    body: bytes,
    props: dict[str, str] | None = None,
    queue_id: int = 0,
    **ext: str,
) -> RemotingCommand:
    cmd = send_v2(topic, body, queue_id, props, queue_nums=1)
    cmd.ext_fields.update(ext)
    return await conn.invoke(cmd, timeout=10)


async def wait_messages(
    conn: RemotingConnection,
    topic: str,
    count: int,
    timeout: float = 15.0,
    queue_id: int = 0,
    offset: int = 0,
) -> list[MessageExt]:
    """Long-poll ``topic``/``queue_id`` from ``offset`` until ``count`` messages came (or time out)."""
    out: list[MessageExt] = []
    deadline = time.monotonic() + timeout
    while len(out) < count and time.monotonic() < deadline:
        resp = await conn.invoke(pull(topic, queue_id, offset, suspend_ms=1000), timeout=10)
        if resp.code == ResponseCode.SUCCESS:
            out.extend(decode_stored_messages(resp.body))
        if "nextBeginOffset" in resp.ext_fields:
            offset = int(resp.ext_fields["nextBeginOffset"])
        if resp.code not in (0, 19, 20):  # not found yet / no match: poll again
            await asyncio.sleep(0.1)  # the topic does not exist yet: it is made on first delivery
    return out


async def send_back(
    conn: RemotingConnection, msg: MessageExt, group: str, delay_level: int = 0, **ext: str
) -> RemotingCommand:
    fields = {
        "offset": str(msg.commit_log_offset),
        "group": group,
        "delayLevel": str(delay_level),
        "originMsgId": msg.msg_id,
        "originTopic": msg.topic,
        "unitMode": "false",
    }
    fields.update(ext)
    return await conn.invoke(
        RemotingCommand(code=RequestCode.CONSUMER_SEND_MSG_BACK, ext_fields=fields), timeout=10
    )


async def update_group(conn: RemotingConnection, group: str, **fields: Any) -> RemotingCommand:
    body = json.dumps({"groupName": group, **fields}).encode()
    return await conn.invoke(
        RemotingCommand(code=RequestCode.UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, body=body), timeout=10
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.05) -> bool:
    """Poll an observable condition (a file, a counter) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def read_json_file(path: Any) -> Any:
    try:
        return json.loads(open(path).read())
    except (OSError, ValueError):
        return None


def create_topic(server: FerryServer, topic: str, queues: int = 8, order: bool = False) -> None:
    """UPDATE_AND_CREATE_TOPIC on the broker, then wait for the name server's route."""
    cluster_helpers.create_topic(server.broker_addr, topic, queues, order=order)
    # the broker re-registers in the background: wait until the name server routes it
    cluster_helpers.eventually(
        lambda: bool((route := cluster_helpers.routed(server.namesrv_addr, topic)) and route.queue_datas),
        10.0,
        "the topic reaching the name server",
    )


class Recorder:
    """A listener that records what each consumer got, thread-safe, with waits on the totals."""

    def __init__(self) -> None:
        import threading

        self.cond = threading.Condition()
        self.got: dict[str, list[MessageExt]] = {}
        self.order: list[tuple[str, MessageExt]] = []

    def listener(self, name: str, result: Any = True) -> Callable[[list[MessageExt]], Any]:
        def consume(msgs: list[MessageExt]) -> Any:
            with self.cond:
                self.got.setdefault(name, []).extend(msgs)
                self.order.extend((name, m) for m in msgs)
                self.cond.notify_all()
            return result

        return consume

    def bodies(self, name: str | None = None) -> set[bytes]:
        with self.cond:
            if name is not None:
                return {m.body for m in self.got.get(name, [])}
            return {m.body for msgs in self.got.values() for m in msgs}

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
        with self.cond:
            return self.cond.wait_for(predicate, timeout)
