"""The admin API's time series and message trace, in-process (an embedded broker sampling every
100 ms): the rates integrate to what /metrics counts, lag follows commits, and trace records
written to RMQ_SYS_TRACE_TOPIC in the Java client's format come back per message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferrymq.cli.embedded import EmbeddedBroker, embedded
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import connect


@pytest.fixture
def broker() -> Iterator[EmbeddedBroker]:
    with embedded(conf={"timeSeriesSampleInterval": 100}) as b:
        yield b


def until(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``check`` until it returns something truthy (the sampler runs every 100 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, "condition not met in time"
            return value
        time.sleep(0.05)


def integral(ts: dict[str, Any]) -> float:
    """Messages a rate series accounts for: each rate times the interval it covers."""
    times, values = ts["timestamps"], ts["series"][0]["values"]
    return sum(v * (t1 - t0) / 1000 for t0, t1, v in zip(times, times[1:], values[1:], strict=False) if v)


async def commit(addr: str, group: str, topic: str, queue: int, offset: int) -> None:
    """UPDATE_CONSUMER_OFFSET over remoting, as a consumer commits."""
    host, port = addr.split(":")
    conn = await connect(host, int(port))
    try:
        fields = {"consumerGroup": group, "topic": topic, "queueId": str(queue), "commitOffset": str(offset)}
        resp = await conn.invoke(RemotingCommand(code=RequestCode.UPDATE_CONSUMER_OFFSET, ext_fields=fields))
        assert resp.code == ResponseCode.SUCCESS, resp.remark
    finally:
        conn.close()


def metric_value(http: httpx.Client, name: str, **labels: str) -> float:
    for fam in text_string_to_metric_families(http.get("/metrics").text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"{name} {labels} not in /metrics")


def test_rates_add_up_to_metrics_and_lag_follows(broker: EmbeddedBroker) -> None:
    broker.create_topic("Charts", queues=1)
    with httpx.Client(base_url=broker.admin_url) as http:
        for i in range(5):
            http.post("/api/topics/Charts/messages", json={"body": f"m{i}"}).raise_for_status()
        stored = metric_value(http, "ferrymq_messages_in_total", topic="Charts")
        assert stored == 5

        def counted() -> dict[str, Any] | None:
            ts = http.get("/api/timeseries", params={"metric": "topic_in_rate", "topic": "Charts"}).json()
            return ts if ts["series"] and abs(integral(ts) - stored) < 1e-9 else None

        ts = until(counted)
        assert ts["unit"] == "messages/s" and ts["interval_ms"] == 100 and ts["capacity"] == 3600
        assert ts["series"][0]["labels"] == {"topic": "Charts"}

        # a group that committed offset 0 lags by all 5, then, reset to the end, by none
        asyncio.run(commit(broker.broker_addr, "g1", "Charts", 0, 0))
        lag = lambda: http.get("/api/timeseries", params={"metric": "group_lag", "group": "g1"}).json()  # noqa: E731
        until(lambda: any(v == 5 for s in lag()["series"] for v in s["values"]))
        http.post("/api/groups/g1/reset-offset", json={"to": "latest", "topic": "Charts"})
        until(lambda: lag()["series"][0]["values"][-1] == 0)
        queue = http.get("/api/timeseries", params={"metric": "queue_lag", "group": "g1", "queue": 0}).json()
        assert queue["series"][0]["labels"] == {"group": "g1", "topic": "Charts", "queue": "0"}

        disk = http.get("/api/timeseries", params={"metric": "disk_used_bytes"}).json()
        assert disk["series"] and max(v or 0 for v in disk["series"][0]["values"]) > 0
        assert http.get("/api/timeseries", params={"metric": "nope"}).status_code == 422
        paths = http.get("/openapi.json").json()["paths"]
        assert "/api/timeseries" in paths and "/api/messages/{msg_id}/trace" in paths
