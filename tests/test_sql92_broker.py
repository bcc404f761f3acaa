"""SQL92 property filters on the broker (issue 11), in-process: CHECK_CLIENT_CONFIG, pulls of a
group subscribed by heartbeat or by the pull's own subscription, the error codes, Kafka records
filtered by their headers, and enablePropertyFilter=false.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from ferrymq.core.broker.broker import Broker
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import MessageExt, decode_stored_messages
from ferrymq.core.remoting.transport import RemotingConnection, connect
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2
from ferrymq.gateway.kafka import records as rb
from tests.inprocess import kafka_broker
from tests.remoting_helpers import pull, send_v2

TOPIC = "SqlTopic"
GROUP = "sql-group"
NOT_SUPPORTED = "The broker does not support consumer to filter message by SQL92"


@contextlib.asynccontextmanager
async def served(tmp_path: Path, **config: Any) -> AsyncIterator[tuple[Broker, RemotingConnection]]:
    async with kafka_broker(tmp_path, TOPIC, 1, **config) as (broker, _frontend):
        conn = await connect("127.0.0.1", broker.port)
        with contextlib.closing(conn):
            yield broker, conn


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 30))


def sub_json(expr: str, etype: str = "SQL92", version: int = 1) -> dict[str, Any]:
    return {"topic": TOPIC, "subString": expr, "expressionType": etype, "subVersion": version, "tagsSet": []}


def check_config(expr: str, etype: str = "SQL92") -> RemotingCommand:
    body = {"clientId": "c1", "group": GROUP, "subscriptionData": sub_json(expr, etype)}
    return RemotingCommand(code=RequestCode.CHECK_CLIENT_CONFIG, body=orjson.dumps(body))


def sql_heartbeat(expr: str, version: int = 1) -> RemotingCommand:
    body = {
        "clientID": "c1",
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": GROUP,
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "CLUSTERING",
                "consumeFromWhere": "CONSUME_FROM_FIRST_OFFSET",
                "subscriptionDataSet": [sub_json(expr, version=version)],
            }
        ],
    }
    return RemotingCommand(code=RequestCode.HEART_BEAT, body=orjson.dumps(body))


def group_pull(
    offset: int, *, sql: str | None = None, sub_version: int = 1, max_nums: int = 32
) -> RemotingCommand:
    """A pull of GROUP: by heartbeat (no subscription flag) or with its own SQL92 subscription."""
    cmd = pull(TOPIC, 0, offset, max_nums)
    ext = cmd.ext_fields
    ext["consumerGroup"] = GROUP
    ext["subVersion"] = str(sub_version)
    ext["expressionType"] = "SQL92"
    if sql is None:
        ext["sysFlag"] = "0"
        ext.pop("subscription")
    else:
        ext["subscription"] = sql
    return cmd


async def send_all(conn: RemotingConnection, values: list[str | None]) -> None:
    """One message per value; its property ``a`` is the value (absent for None)."""
    for i, value in enumerate(values):
        props = {"i": str(i)} if value is None else {"i": str(i), "a": value}
        resp = await conn.invoke(send_v2(TOPIC, b"m%d" % i, 0, props, 1))
        assert resp.code == ResponseCode.SUCCESS, resp.remark


async def drain(conn: RemotingConnection, make: Any) -> list[MessageExt]:
    """Pull from 0 until the queue's end; every response's nextBeginOffset moves forward."""
    out: list[MessageExt] = []
    offset = 0
    for _ in range(1000):
        resp = await conn.invoke(make(offset))
        if resp.code == ResponseCode.PULL_NOT_FOUND:
            return out
        assert resp.code in (ResponseCode.SUCCESS, ResponseCode.PULL_RETRY_IMMEDIATELY), resp.remark
        if resp.code == ResponseCode.SUCCESS:
            out.extend(decode_stored_messages(resp.body))
        nxt = int(resp.ext_fields["nextBeginOffset"])
        assert nxt > offset
        offset = nxt
    raise AssertionError("the pulls never reached the end")


def test_check_client_config_refuses_a_malformed_expression(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (_, conn):
            bad = await conn.invoke(check_config("a > "))
            assert bad.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
            assert bad.remark
            ok = await conn.invoke(check_config("a > 2 AND b IS NULL"))
            assert ok.code == ResponseCode.SUCCESS, ok.remark
            tag = await conn.invoke(check_config("TagA || TagB", "TAG"))
            assert tag.code == ResponseCode.SUCCESS

    run(main())


def test_a_heartbeat_sql92_subscription_filters_pulls(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (_, conn):
            assert (await conn.invoke(sql_heartbeat("a > 2"))).code == ResponseCode.SUCCESS
            await send_all(conn, ["1", "3", None, "2", "10", "x", "5"])
            got = await drain(conn, group_pull)
            assert [m.properties["a"] for m in got] == ["3", "10", "5"]

    run(main())


def test_a_pull_with_its_own_sql92_subscription_is_filtered(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (_, conn):
            await send_all(conn, [str(i) for i in range(100)])
            got = await drain(
                conn, lambda off: group_pull(off, sql="a BETWEEN 10 AND 12 OR a = '99'", max_nums=5)
            )
            assert [m.properties["a"] for m in got] == ["10", "11", "12", "99"]
            assert [m.queue_offset for m in got] == [10, 11, 12, 99]

    run(main())


def test_error_codes(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (_, conn):
            await send_all(conn, ["1"])
            resp = await conn.invoke(group_pull(0, sql="a >"))
            assert resp.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
            assert (await conn.invoke(group_pull(0))).code == ResponseCode.SUBSCRIPTION_NOT_EXIST
            assert (await conn.invoke(sql_heartbeat("a > 0", version=5))).code == ResponseCode.SUCCESS
            assert (
                await conn.invoke(group_pull(0, sub_version=6))
            ).code == ResponseCode.SUBSCRIPTION_NOT_LATEST
            assert (await conn.invoke(sql_heartbeat("a >>", version=7))).code == ResponseCode.SUCCESS
            assert (
                await conn.invoke(group_pull(0, sub_version=7))
            ).code == ResponseCode.FILTER_DATA_NOT_EXIST

    run(main())


def test_property_filter_disabled_answers_system_error(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path, enable_property_filter=False) as (_, conn):
            await send_all(conn, ["1"])
            resp = await conn.invoke(check_config("a > 2"))
            assert (resp.code, resp.remark) == (ResponseCode.SYSTEM_ERROR, NOT_SUPPORTED)
            resp = await conn.invoke(group_pull(0, sql="a > 2"))
            assert (resp.code, resp.remark) == (ResponseCode.SYSTEM_ERROR, NOT_SUPPORTED)
            assert (await conn.invoke(sql_heartbeat("a > 2"))).code == ResponseCode.SUCCESS
            resp = await conn.invoke(group_pull(0))
            assert (resp.code, resp.remark) == (ResponseCode.SYSTEM_ERROR, NOT_SUPPORTED)
            assert (await conn.invoke(check_config("*", "TAG"))).code == ResponseCode.SUCCESS

    run(main())


def test_kafka_records_are_filtered_by_their_headers(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (broker, conn):
            store = broker.store
            for base in (0, 4):
                records = [
                    (i, 1000 + i, None, b"k%d" % (base + i), [("a", b"%d" % (base + i))]) for i in range(4)
                ]
                batch = bytearray(rb.build_batch(0, records))
                rb.patch_base(batch, store.max_offset(TOPIC, 0))
                store.put_batch_entry(TOPIC, 0, len(records), BATCH_FORMAT_KAFKA_V2, batch)
            await send_all(conn, [None, "9"])  # native messages at offsets 8 and 9
            got = await drain(conn, lambda off: group_pull(off, sql="a >= 2 AND a <> 5", max_nums=2))
            assert [(m.queue_offset, m.properties["a"]) for m in got] == [
                (2, "2"),
                (3, "3"),
                (4, "4"),
                (6, "6"),
                (7, "7"),
                (9, "9"),
            ]
            assert [m.body for m in got][:2] == [b"k2", b"k3"]

    run(main())


def test_a_malformed_check_client_config_body_is_refused_and_the_connection_lives(tmp_path: Path) -> None:
    async def main() -> None:
        async with served(tmp_path) as (_, conn):
            for body in (b"{not json", b"[]", b'{"subscriptionData": {"subVersion": "x"}}'):
                cmd = RemotingCommand(code=RequestCode.CHECK_CLIENT_CONFIG, body=body)
                resp = await conn.invoke(cmd)
                assert resp.code in (ResponseCode.SYSTEM_ERROR, ResponseCode.SUCCESS), resp
            deep = await conn.invoke(check_config(" AND ".join(["a > 1"] * 5000)))
            assert deep.code == ResponseCode.SUBSCRIPTION_PARSE_FAILED
            assert (await conn.invoke(check_config("a > 1"))).code == ResponseCode.SUCCESS

    run(main())
