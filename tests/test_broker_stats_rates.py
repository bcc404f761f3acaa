"""Rates mqadmin shows (brokerStatus/clusterList putTps and getTransferredTps, statsAll's
VIEW_BROKER_STATS_DATA, consumerProgress's consumeTps, topicStatus's topicPutTps): real rates
from sampled counters, as RocketMQ's StoreStatsService and StatsItem compute them. The sampler is
driven with explicit times here."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.stats import BrokerStats
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect
from tests.inprocess import kafka_broker
from tests.remoting_helpers import pull, send_v2


def test_store_tps_over_10_60_600_seconds() -> None:
    s = BrokerStats()
    s.sample(0)
    s.on_put("T", 50, 500)
    for second in range(1, 11):
        s.sample(second * 1000)
    assert s.put_tps_text().split(" ")[0] == "5.0"  # 50 messages in the last 10 s
    s.on_get("T", 20, 200, "G")
    s.sample(11_000)
    s.sample(11_000)  # a repeated time is no new sample
    assert s.get_tps_text().split(" ")[0] == "2.0"
    # the 60 s and 600 s figures span what they have so far: 50 puts in 11 s
    assert [float(f) for f in s.put_tps_text().split(" ")[1:]] == [50 / 11, 50 / 11]


def test_stats_item_minute_hour_day() -> None:
    s = BrokerStats()
    s.on_put("T", 30, 300)
    s.sample(0)  # the first sample stands in for 0 at 10 s before (StatsItem's rule)
    minute = s.stats_data("TOPIC_PUT_NUMS", "T")
    assert minute is not None and minute["statsMinute"] == {"sum": 30, "tps": 3.0, "avgpt": 30.0}
    assert s.stats_data("TOPIC_PUT_NUMS", "nope") is None
    assert s.stats_data("NO_SUCH_STATS", "T") is None


def test_rates_over_remoting(tmp_path: Path) -> None:
    async def body(broker: Broker, _: Any) -> None:
        now = [1_000_000]
        broker.stats = BrokerStats(clock_ms=lambda: now[0])  # the broker's sampler ticks on this clock
        conn = await connect("127.0.0.1", broker.port)
        try:
            broker.stats.tick()
            for _ in range(20):
                r = await conn.invoke(send_v2("T", b"x", 0, queue_nums=2), timeout=5)
                assert r.code == ResponseCode.SUCCESS
            p = pull("T", 0, 0)
            r = await conn.invoke(p, timeout=5)
            assert r.code == ResponseCode.SUCCESS
            now[0] = 1_010_000
            broker.stats.tick()

            async def ask(code: RequestCode, **ext: str) -> RemotingCommand:
                return await conn.invoke(RemotingCommand(code=code, ext_fields=ext), timeout=5)

            r = await ask(RequestCode.GET_BROKER_RUNTIME_INFO)
            table = json.loads(bytes(r.body))["table"]
            assert table["putTps"].split(" ")[0] == "2.0", table
            assert table["getTransferredTps"].split(" ")[0] == "2.0", table
            r = await ask(RequestCode.VIEW_BROKER_STATS_DATA, statsName="TOPIC_PUT_NUMS", statsKey="T")
            assert r.code == ResponseCode.SUCCESS, r.remark
            assert json.loads(bytes(r.body))["statsMinute"]["tps"] == 2.0
            key = "T@test-group"
            r = await ask(RequestCode.VIEW_BROKER_STATS_DATA, statsName="GROUP_GET_NUMS", statsKey=key)
            assert r.code == ResponseCode.SUCCESS, r.remark
            assert json.loads(bytes(r.body))["statsMinute"]["sum"] == 20
            r = await ask(RequestCode.VIEW_BROKER_STATS_DATA, statsName="TOPIC_PUT_NUMS", statsKey="nope")
            assert r.code == ResponseCode.SYSTEM_ERROR
            assert r.remark == "The stats <TOPIC_PUT_NUMS> <nope> not exist"
            r = await ask(RequestCode.GET_CONSUME_STATS, consumerGroup="test-group", topic="T")
            assert json.loads(bytes(r.body).split(b',"offsetTable"')[0] + b"}")["consumeTps"] == 2.0
            r = await ask(RequestCode.GET_TOPIC_STATS_INFO, topic="T")
            assert b'"topicPutTps":2.0' in bytes(r.body)
        finally:
            conn.close()

    async def main() -> None:
        async with kafka_broker(tmp_path, "T", 2) as (broker, frontend):
            await asyncio.wait_for(body(broker, frontend), 20)

    asyncio.run(main())
