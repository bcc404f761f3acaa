"""POP consumption over remoting against an in-process broker (core/broker/pop and
processors/pop_message.py, assignment.py): pop, ack, change invisible time, revive with
reconsume times + 1, the dead-letter queue by count, FIFO locks, long polling, a restart.

Before: every one of these request codes was answered REQUEST_CODE_NOT_SUPPORTED.
"""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.pop import Receipt
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.inprocess import kafka_broker
from tests.remoting_helpers import pull_all, send_v2

TOPIC = "PopTopic"
GROUP = "pop-group"


def pop_cmd(
    queue_id: int = -1, n: int = 32, invisible: int = 60_000, poll: int = 0, order: bool = False
) -> RemotingCommand:
    return RemotingCommand(
        code=RequestCode.POP_MESSAGE,
        ext_fields={
            "consumerGroup": GROUP,
            "topic": TOPIC,
            "queueId": str(queue_id),
            "maxMsgNums": str(n),
            "invisibleTime": str(invisible),
            "pollTime": str(poll),
            "bornTime": "0",
            "initMode": "0",
            "expType": "TAG",
            "exp": "*",
            "order": "true" if order else "false",
        },
    )


def receipts(resp: RemotingCommand) -> list[tuple[Receipt, int, bytes]]:
    """Each popped message's receipt as the Java client builds it (MQClientAPIImpl.processPopResponse)."""
    ext = resp.ext_fields
    starts = {k: int(v) for k, v in (p.rsplit(" ", 1) for p in ext["startOffsetInfo"].split(";"))}
    out = []
    for m in decode_stored_messages(resp.body):
        start = starts[f"0 {m.queue_id}"]
        head = f"{start} {ext['popTime']} {ext['invisibleTime']} {ext['reviveQid']}"
        text = f"{head} 0 broker-a {m.queue_id} {m.queue_offset}"
        out.append((Receipt.parse(text), m.reconsume_times, m.body))
    return out


def ack_cmd(r: Receipt, code: int = RequestCode.ACK_MESSAGE, **extra: str) -> RemotingCommand:
    fields = {
        "consumerGroup": GROUP,
        "topic": TOPIC,
        "queueId": str(r.queue_id),
        "extraInfo": r.encode(),
        "offset": str(r.offset),
    }
    return RemotingCommand(code=code, ext_fields={**fields, **extra})


async def send(conn: RemotingConnection, n: int, queue_id: int = 0, first: int = 0) -> None:
    for i in range(first, first + n):
        resp = await conn.invoke(send_v2(TOPIC, b"m%d" % i, queue_id, {"TAGS": "t"}, 2))
        assert resp.code == ResponseCode.SUCCESS, resp.remark


def run(tmp_path: Path, body, **config) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        async with kafka_broker(tmp_path, TOPIC, 2, broker_name="broker-a", **config) as (broker, _):
            broker.topics.create_if_absent(TOPIC, 2)
            conn = await connect("127.0.0.1", broker.port)
            try:
                await body(broker, conn)
            finally:
                conn.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_pop_ack_and_offsets(tmp_path: Path) -> None:
    async def body(broker: Broker, conn: RemotingConnection) -> None:
        await send(conn, 3, 0)
        await send(conn, 2, 1)
        resp = await conn.invoke(pop_cmd())
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        got = receipts(resp)
        assert sorted(b for _, _, b in got) == [b"m0", b"m0", b"m1", b"m1", b"m2"]
        again = await conn.invoke(pop_cmd())  # all invisible now
        assert again.code == ResponseCode.PULL_NOT_FOUND
        q0 = [r for r, _, _ in got if r.queue_id == 0]
        for r in q0[1:]:
            assert (await conn.invoke(ack_cmd(r))).code == ResponseCode.SUCCESS
        assert broker.offsets.query(GROUP, TOPIC, 0) == 0  # offset 0 is still out
        # a batch ack as the Java client encodes it: one bit per offset from the checkpoint start
        bits = (1).to_bytes(1, "little")
        batch = {
            "acks": [
                {
                    "c": GROUP,
                    "t": TOPIC,
                    "r": "0",
                    "so": q0[0].ck_offset,
                    "q": 0,
                    "rq": 0,
                    "pt": q0[0].pop_time,
                    "it": q0[0].invisible_ms,
                    "b": base64.b64encode(bits).decode(),
                }
            ],
            "brokerName": "broker-a",
        }
        resp = await conn.invoke(
            RemotingCommand(code=RequestCode.BATCH_ACK_MESSAGE, body=json.dumps(batch).encode())
        )
        assert resp.code == ResponseCode.SUCCESS
        assert broker.offsets.query(GROUP, TOPIC, 0) == 3
        bad = await conn.invoke(ack_cmd(q0[0], extraInfo="1 2 3"))
        assert bad.code == ResponseCode.INVALID_PARAMETER

    run(tmp_path, body)


def test_revive_redelivers_with_reconsume_times_then_dead_letters(tmp_path: Path) -> None:
    async def body(broker: Broker, conn: RemotingConnection) -> None:
        cfg = broker.subscription_groups.find(GROUP)
        assert cfg is not None
        broker.subscription_groups.update(cfg.model_copy(update={"retry_max_times": 1}))
        await send(conn, 1, 0)
        first = receipts(await conn.invoke(pop_cmd(0, invisible=50)))
        assert [(t, b) for _, t, b in first] == [(0, b"m0")]
        # parked until the revive timer gives the message back
        second = receipts(await conn.invoke(pop_cmd(0, invisible=50, poll=10_000), timeout=15))
        assert [(t, b) for _, t, b in second] == [(1, b"m0")]
        # a change of invisible time keeps it out; the new receipt acks, the old one is spent
        resp = await conn.invoke(
            ack_cmd(second[0][0], RequestCode.CHANGE_MESSAGE_INVISIBLETIME, invisibleTime="60000")
        )
        assert resp.code == ResponseCode.SUCCESS
        spent = await conn.invoke(
            ack_cmd(second[0][0], RequestCode.CHANGE_MESSAGE_INVISIBLETIME, invisibleTime="1")
        )
        assert spent.code == ResponseCode.NO_MESSAGE
        await send(conn, 1, 0, first=1)
        third = receipts(await conn.invoke(pop_cmd(0, invisible=50)))
        assert [(t, b) for _, t, b in third] == [(0, b"m1")]  # offset 1: a new message
        fourth = receipts(await conn.invoke(pop_cmd(0, invisible=50, poll=10_000), timeout=15))
        assert [(t, b) for _, t, b in fourth] == [(1, b"m1")]
        for _ in range(100):  # revived a second time past retryMaxTimes 1: to %DLQ%
            if broker.topics.get("%DLQ%" + GROUP) is not None and broker.store.max_offset("%DLQ%" + GROUP, 0):
                break
            await asyncio.sleep(0.05)
        dead = await pull_all(conn, "%DLQ%" + GROUP, range(1))
        assert [(m.body, m.reconsume_times) for m in dead] == [(b"m1", 2)]
        assert broker.offsets.query(GROUP, TOPIC, 0) == 0  # offset 0 is still changed-invisible

    run(tmp_path, body)


def test_fifo_queue_is_one_popper_at_a_time_in_order(tmp_path: Path) -> None:
    async def body(broker: Broker, conn: RemotingConnection) -> None:
        await send(conn, 3, 0)
        a = receipts(await conn.invoke(pop_cmd(0, n=2, order=True)))
        assert [b for _, _, b in a] == [b"m0", b"m1"]
        assert (await conn.invoke(pop_cmd(0, order=True))).code == ResponseCode.PULL_NOT_FOUND  # locked
        await conn.invoke(ack_cmd(a[0][0]))
        assert (await conn.invoke(pop_cmd(0, order=True))).code == ResponseCode.PULL_NOT_FOUND
        await conn.invoke(ack_cmd(a[1][0]))
        b = receipts(await conn.invoke(pop_cmd(0, order=True)))
        assert [b for _, _, b in b] == [b"m2"]

    run(tmp_path, body)


def test_set_request_mode_and_query_assignment(tmp_path: Path) -> None:
    async def body(broker: Broker, conn: RemotingConnection) -> None:
        def req(code: int, obj: dict[str, object]) -> RemotingCommand:
            return RemotingCommand(code=code, body=json.dumps(obj).encode())

        q = {
            "topic": TOPIC,
            "consumerGroup": GROUP,
            "clientId": "c1",
            "strategyName": "AVG",
            "messageModel": "CLUSTERING",
        }
        resp = await conn.invoke(req(RequestCode.QUERY_ASSIGNMENT, q))
        modes = {a["mode"] for a in json.loads(resp.body)["messageQueueAssignments"]}
        assert modes == {"PULL"}
        resp = await conn.invoke(
            req(
                RequestCode.SET_MESSAGE_REQUEST_MODE,
                {"topic": TOPIC, "consumerGroup": GROUP, "mode": "POP", "popShareQueueNum": 0},
            )
        )
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        resp = await conn.invoke(req(RequestCode.QUERY_ASSIGNMENT, q))
        got = json.loads(resp.body)["messageQueueAssignments"]
        assert sorted((a["messageQueue"]["queueId"], a["mode"]) for a in got) == [(0, "POP"), (1, "POP")]
        resp = await conn.invoke(
            req(
                RequestCode.SET_MESSAGE_REQUEST_MODE,
                {"topic": "%RETRY%x", "consumerGroup": GROUP, "mode": "POP"},
            )
        )
        assert resp.code == ResponseCode.NO_PERMISSION

    run(tmp_path, body)


def test_unacked_state_survives_a_restart(tmp_path: Path) -> None:
    state: dict[str, list[Receipt]] = {}

    async def first(broker: Broker, conn: RemotingConnection) -> None:
        await send(conn, 3, 0)
        got = receipts(await conn.invoke(pop_cmd(0)))
        await conn.invoke(ack_cmd(got[1][0]))
        state["r"] = [r for r, _, _ in got]

    async def second(broker: Broker, conn: RemotingConnection) -> None:
        assert (await conn.invoke(pop_cmd(0))).code == ResponseCode.PULL_NOT_FOUND  # still invisible
        r0, r1, r2 = state["r"]
        assert broker.pop.ack(GROUP, TOPIC, r1) is False  # acked before the restart
        assert broker.pop.ack(GROUP, TOPIC, r0) and broker.pop.ack(GROUP, TOPIC, r2)
        assert broker.offsets.query(GROUP, TOPIC, 0) == 3

    run(tmp_path, first)
    run(tmp_path, second)


def test_init_max_starts_a_new_group_where_java_does(tmp_path: Path) -> None:
    """ConsumeInitMode.MAX (what gRPC receives use): a queue still holding offset 0 is read from 0
    (Java's initPopOffsetByCheckMsgInMem); any other queue from its last message."""
    from ferrymq.core.broker.pop.service import _init_max

    assert (_init_max(0, 3), _init_max(0, 0), _init_max(5, 9), _init_max(9, 9)) == (0, 0, 8, 8)

    async def body(broker: Broker, conn: RemotingConnection) -> None:
        await send(conn, 3, 0)
        cmd = pop_cmd(queue_id=0)
        cmd.ext_fields["initMode"] = "1"
        resp = await conn.invoke(cmd)
        assert resp.code == ResponseCode.SUCCESS, resp.remark
        assert [b for _, _, b in receipts(resp)] == [b"m0", b"m1", b"m2"]

    run(tmp_path, body)
