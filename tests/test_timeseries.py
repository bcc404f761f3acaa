"""The console's time series (core/broker/timeseries.py): counters become rates, the ring keeps
a bounded window, series past the cap are dropped, and the broker's reading matches its counters."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.timeseries import (
    MAX_POINTS,
    Reading,
    TimeSeriesRing,
    TimeSeriesSampler,
    capacity_for,
    key,
    read_broker,
)
from ferrymq.core.config import BrokerConfig


def test_counters_become_rates_and_gauges_stay() -> None:
    ring = TimeSeriesRing(capacity=4, max_series=10)
    s = TimeSeriesSampler(ring)
    s.sample(100.0, Reading({key("topic_in_rate", topic="a"): 10}, {key("group_lag", group="g"): 5}))
    s.sample(102.0, Reading({key("topic_in_rate", topic="a"): 30}, {key("group_lag", group="g"): 7}))
    times, series = ring.query("topic_in_rate")
    assert times == [100_000, 102_000]
    assert [(x.labels, x.values) for x in series] == [({"topic": "a"}, [None, 10.0])]
    _, lag = ring.query("group_lag", {"group": "g"})
    assert lag[0].values == [5.0, 7.0]
    assert ring.query("group_lag", {"group": "other"})[1] == []


def test_ring_keeps_the_last_capacity_points_and_forgets_empty_series() -> None:
    ring = TimeSeriesRing(capacity=3, max_series=10)
    ring.append(1, {key("disk_used_bytes"): 1, key("group_lag", group="old"): 9})
    for t in range(2, 6):
        ring.append(t, {key("disk_used_bytes"): t})
    times, [disk] = ring.query("disk_used_bytes")
    assert times == [3, 4, 5] and disk.values == [3.0, 4.0, 5.0]
    assert ring.series_count("group_lag") == 0  # nothing of it left in the window
    assert ring.query("disk_used_bytes", since_ms=4)[0] == [4, 5]


def test_series_past_the_cap_are_dropped_and_counted() -> None:
    ring = TimeSeriesRing(capacity=2, max_series=2)
    ring.append(1, {key("topic_in_rate", topic=t): 1 for t in "abc"})
    assert ring.series_count("topic_in_rate") == 2 and ring.dropped_series == 1


def test_capacity_is_retention_over_interval_bounded() -> None:
    assert capacity_for(10_000, 3_600_000) == 360
    assert capacity_for(50, 3_600_000) == MAX_POINTS


def test_reading_follows_the_broker_counters_and_lag(tmp_path: Path) -> None:
    b = Broker(BrokerConfig(storePathRootDir=str(tmp_path), brokerName="broker-a"))
    b.stats.on_put("T", 3, 30)
    b.stats.on_get("T", 1, 10)
    b.offsets.commit("g", "T", 0, 0)
    r = read_broker(b, disk_used=1234)
    assert r.counters[key("broker_in_rate")] == 3 and r.counters[key("topic_out_rate", topic="T")] == 1
    assert r.gauges[key("disk_used_bytes")] == 1234
    assert r.gauges[key("group_lag", group="g")] == 0  # nothing stored in the store itself
    assert not any(k[0] == "replication_lag_bytes" for k in r.gauges)  # no slaves, no series
    end = b.store.commit_log.write_offset
    b.ha.slave_acked("10.0.0.2:40000", end - 100, end)  # a master with a slave 100 bytes behind
    r = read_broker(b, disk_used=0)
    assert r.gauges[key("replication_lag_bytes", slave="10.0.0.2:40000")] == 100


def test_the_broker_samples_from_start_to_stop(tmp_path: Path) -> None:
    async def main() -> None:
        conf = {"listen_port": 0, "listen_host": "127.0.0.1", "store_path_root_dir": tmp_path / "store"}
        b = Broker(BrokerConfig(**conf, timeSeriesSampleInterval=50))
        await b.start()
        try:
            while not b.timeseries.ring.times():  # the first sample one interval after start
                await asyncio.sleep(0.01)
            assert b.timeseries.running
        finally:
            await b.stop()
        assert not b.timeseries.running

    asyncio.run(asyncio.wait_for(main(), 30))
