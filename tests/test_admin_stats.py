"""The admin request families mqadmin uses (processors/admin_stats.py, consumer_admin.py), in
process: bodies in the shape the Java tools parse, and bad or impossible requests answered with
RocketMQ's codes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.offset_reset import offsets_by_time
from ferrymq.core.broker.processors.admin_stats import AdminStatsProcessor
from ferrymq.core.broker.processors.consumer_admin import ConsumerAdminProcessor
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from tests.inprocess import kafka_broker

PEER: Any = SimpleNamespace(peer="127.0.0.1:1")


def with_broker(tmp_path: Path, body: Any) -> None:
    async def main() -> None:
        async with kafka_broker(tmp_path, "T", 2) as (broker, _):
            await body(broker)

    asyncio.run(main())


def ask(code: RequestCode, **ext: str) -> RemotingCommand:
    return RemotingCommand(code=code, opaque=7, ext_fields=dict(ext))


def test_topic_stats_and_consume_stats(tmp_path: Path) -> None:
    async def body(broker: Broker) -> None:
        stats = AdminStatsProcessor(broker)
        r = stats.topic_stats(ask(RequestCode.GET_TOPIC_STATS_INFO, topic="T"), PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.SUCCESS
        text = bytes(r.body).decode()
        assert text.count('"topic":"T"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}') == 2, text
        broker.offsets.commit("G", "T", 1, 0)
        r = stats.consume_stats(ask(RequestCode.GET_CONSUME_STATS, consumerGroup="G"), PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.SUCCESS
        assert bytes(r.body).startswith(b'{"consumeTps":0.0,"offsetTable":{{"brokerName":')
        r = stats.consume_by_who(ask(RequestCode.QUERY_TOPIC_CONSUME_BY_WHO, topic="T"), PEER)
        assert isinstance(r, RemotingCommand) and json.loads(bytes(r.body)) == {"groupList": ["G"]}
        r = stats.broker_consume_stats(ask(RequestCode.GET_BROKER_CONSUME_STATS, isOrder="false"), PEER)
        assert isinstance(r, RemotingCommand) and b'{"G":[{"consumeTps"' in bytes(r.body)

    with_broker(tmp_path, body)


def test_bad_and_impossible_requests(tmp_path: Path) -> None:
    async def body(broker: Broker) -> None:
        stats = AdminStatsProcessor(broker)
        admin = ConsumerAdminProcessor(broker)
        r = stats.topic_stats(ask(RequestCode.GET_TOPIC_STATS_INFO), PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.SYSTEM_ERROR
        assert r.remark == "the custom field <topic> is null" and r.opaque == 7
        r = stats.topic_stats(ask(RequestCode.GET_TOPIC_STATS_INFO, topic="nope"), PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.TOPIC_NOT_EXIST
        r = stats.consumer_connections(ask(RequestCode.GET_CONSUMER_CONNECTION_LIST, consumerGroup="G"), PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.CONSUMER_NOT_ONLINE
        reset = ask(
            RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, topic="T", group="G", timestamp="0", isForce="true"
        )
        r = admin.reset_offset(reset, PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.CONSUMER_NOT_ONLINE
        bad = ask(RequestCode.INVOKE_BROKER_TO_RESET_OFFSET, topic="T", group="G", timestamp="soon")
        r = admin.reset_offset(bad, PEER)
        assert isinstance(r, RemotingCommand) and r.code == ResponseCode.SYSTEM_ERROR
        info = ask(RequestCode.GET_CONSUMER_RUNNING_INFO, consumerGroup="G", clientId="c1")
        r = await admin.running_info(info, PEER)
        assert r.code == ResponseCode.SYSTEM_ERROR and r.remark == "The Consumer <G> <c1> not online"
        msg_id = "7F00000100002A9F0000000000000000"  # an offset id: nothing stored there yet
        direct = ask(RequestCode.CONSUME_MESSAGE_DIRECTLY, consumerGroup="G", clientId="c1", msgId=msg_id)
        r = await admin.consume_directly(direct, PEER)
        assert r.code == ResponseCode.SYSTEM_ERROR and r.remark == "can not find message by the offset, 0"
        direct.ext_fields["msgId"] = "not-hex"
        r = await admin.consume_directly(direct, PEER)
        assert r.code == ResponseCode.SYSTEM_ERROR and r.remark == "not an offset message id: not-hex"

    with_broker(tmp_path, body)


def test_reset_offsets_only_move_back_unless_forced(tmp_path: Path) -> None:
    async def body(broker: Broker) -> None:
        broker.offsets.commit("G", "T", 0, 0)
        assert offsets_by_time(broker, "G", "T", -1, force=False) == {0: 0, 1: 0}
        assert offsets_by_time(broker, "G", "nope", 0, force=True) == {}

    with_broker(tmp_path, body)
