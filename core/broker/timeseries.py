"""The broker's recent past for the console's charts: a sampler over core's own counters,
kept in memory in a fixed-size ring (no external database).

Every ``timeSeriesSampleInterval`` ms the broker reads what it already counts (``BrokerStats``,
the offset table, the store, the HA state) and records one point per series:

===========================  ==========================  ============================================
metric                       labels                      what
===========================  ==========================  ============================================
``broker_in_rate``           —                           messages stored per second, all topics
``broker_out_rate``          —                           messages delivered per second, all topics
``topic_in_rate``            ``topic``                   messages stored per second
``topic_out_rate``           ``topic``                   messages delivered per second
``group_lag``                ``group``                   messages not yet consumed (as /metrics)
``queue_lag``                ``group topic queue``       the same per queue
``disk_used_bytes``          —                           bytes the store occupies on disk
``commitlog_bytes``          —                           bytes of the commit log retained
``replication_lag_bytes``    ``slave``                   a master's bytes a slave has not acknowledged
===========================  ==========================  ============================================

Memory is bounded: ``capacity`` points (``timeSeriesRetention / timeSeriesSampleInterval``, at
most ``MAX_POINTS``) per series and at most ``timeSeriesMaxSeries`` series, 8 bytes a point: with
the defaults (10 s, one hour, 2000 series) 360 points and at most 5.8 MB. A series past the cap
is not recorded (counted in ``dropped_series``); a series with no point left in the ring is
forgotten. ``TimeSeriesRing`` and ``TimeSeriesSampler`` are pure code (time passed in);
``TimeSeriesService`` is the thin asyncio loop on the broker.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.timeseries")

#: at most this many points per series, whatever retention / interval says
MAX_POINTS = 3600
#: metric -> (unit, label names)
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "broker_in_rate": ("messages/s", ()),
    "broker_out_rate": ("messages/s", ()),
    "topic_in_rate": ("messages/s", ("topic",)),
    "topic_out_rate": ("messages/s", ("topic",)),
    "group_lag": ("messages", ("group",)),
    "queue_lag": ("messages", ("group", "topic", "queue")),
    "disk_used_bytes": ("bytes", ()),
    "commitlog_bytes": ("bytes", ()),
    "replication_lag_bytes": ("bytes", ("slave",)),
}

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]


def key(metric: str, **labels: str) -> SeriesKey:
    return metric, tuple(sorted(labels.items()))


@dataclass(slots=True)
class SeriesData:
    labels: dict[str, str]
    values: list[float | None]  # None: no sample at that time


class TimeSeriesRing:
    """Points at shared sample times, oldest first; ``capacity`` of them per series."""

    def __init__(self, capacity: int, max_series: int) -> None:
        self.capacity = capacity
        self.max_series = max_series
        self._times = array("q", [0] * capacity)
        self._series: dict[SeriesKey, array[float]] = {}
        self._next = 0  # slot the next sample goes to
        self._count = 0
        self.dropped_series = 0

    def append(self, t_ms: int, values: Mapping[SeriesKey, float]) -> None:
        slot = self._next
        self._times[slot] = t_ms
        for k, ring in self._series.items():
            ring[slot] = values.get(k, math.nan)
        for k, v in values.items():
            if k in self._series:
                continue
            if len(self._series) >= self.max_series:
                self.dropped_series += 1
                continue
            ring = array("d", [math.nan] * self.capacity)
            ring[slot] = v
            self._series[k] = ring
        self._next = (slot + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)
        if self._count == self.capacity:  # forget series with nothing left in the window
            for k in [k for k, r in self._series.items() if all(math.isnan(x) for x in r)]:
                del self._series[k]

    def _order(self) -> list[int]:
        start = (self._next - self._count) % self.capacity
        return [(start + i) % self.capacity for i in range(self._count)]

    def times(self, since_ms: int = 0) -> list[int]:
        return [t for t in (self._times[i] for i in self._order()) if t >= since_ms]

    def query(
        self, metric: str, match: Mapping[str, str] | None = None, since_ms: int = 0
    ) -> tuple[list[int], list[SeriesData]]:
        """The sample times (ms) since ``since_ms`` and every series of ``metric`` whose labels
        include ``match``."""
        order = [i for i in self._order() if self._times[i] >= since_ms]
        out: list[SeriesData] = []
        for (m, labels), ring in sorted(self._series.items()):
            d = dict(labels)
            if m != metric or any(d.get(k) != v for k, v in (match or {}).items()):
                continue
            out.append(SeriesData(d, [None if math.isnan(ring[i]) else ring[i] for i in order]))
        return [self._times[i] for i in order], out

    def series_count(self, metric: str) -> int:
        return sum(1 for m, _ in self._series if m == metric)


@dataclass(slots=True)
class Reading:
    """What the broker counts at one moment: monotonic counters (turned into per-second rates)
    and gauges (recorded as they are)."""

    counters: dict[SeriesKey, float]
    gauges: dict[SeriesKey, float]


class TimeSeriesSampler:
    """Turns successive readings into ring points: counters become rates over the time since
    the previous reading (the first reading only sets the baseline)."""

    def __init__(self, ring: TimeSeriesRing) -> None:
        self.ring = ring
        self._last: tuple[int, dict[SeriesKey, float]] | None = None

    def sample(self, now: float, reading: Reading) -> None:
        """Record ``reading`` taken at ``now`` (seconds). A rate is over the recorded times, so
        rate x (time - previous time) is exactly what the counter grew by."""
        t_ms = int(now * 1000)
        points = dict(reading.gauges)
        if self._last is not None and t_ms > self._last[0]:
            dt = (t_ms - self._last[0]) / 1000
            before = self._last[1]
            for k, v in reading.counters.items():
                points[k] = max(0.0, v - before.get(k, 0.0)) / dt
        self._last = (t_ms, reading.counters)
        self.ring.append(t_ms, points)


def read_broker(broker: Broker, disk_used: int) -> Reading:
    """One reading of the broker's counters, lag, store and replication."""
    from ferrymq.core.broker.group_views import GroupRegistry  # group_views imports broker types

    stats = broker.stats
    counters: dict[SeriesKey, float] = {
        key("broker_in_rate"): stats.put_messages,
        key("broker_out_rate"): stats.get_messages,
    }
    for topic, pair in stats.topic_in.items():
        counters[key("topic_in_rate", topic=topic)] = pair[0]
    for topic, pair in stats.topic_out.items():
        counters[key("topic_out_rate", topic=topic)] = pair[0]
    gauges: dict[SeriesKey, float] = {
        key("disk_used_bytes"): disk_used,
        key("commitlog_bytes"): broker.store.commit_log_bytes,
    }
    registry = GroupRegistry(broker)
    for group in broker.offsets.groups():
        total = 0
        for p in registry.progress(group, registry.topics(group, registry.native.group_state(group))):
            gauges[key("queue_lag", group=group, topic=p.topic, queue=str(p.queue_id))] = p.lag
            total += p.lag
        gauges[key("group_lag", group=group)] = total
    if not broker.ha.is_slave:
        end = broker.store.commit_log.write_offset
        for r in broker.ha.replicas():
            gauges[key("replication_lag_bytes", slave=r.addr)] = max(0, end - r.ack_offset)
    return Reading(counters, gauges)


def capacity_for(interval_ms: int, retention_ms: int) -> int:
    return max(2, min(MAX_POINTS, math.ceil(retention_ms / interval_ms)))


class TimeSeriesService:
    """Samples the broker every interval on its event loop (the disk walk in a thread)."""

    def __init__(self, broker: Broker) -> None:
        c = broker.config
        self.broker = broker
        self.interval_ms = c.time_series_sample_interval
        self.ring = TimeSeriesRing(
            capacity_for(self.interval_ms, c.time_series_retention), c.time_series_max_series
        )
        self.sampler = TimeSeriesSampler(self.ring)
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start sampling. The counters start at zero with the broker, so the start itself is the
        first sample's baseline: the rates account for every message from the start on."""
        if self._task is None:
            self.sampler.sample(time.time(), Reading({}, {}))
            self._task = asyncio.create_task(self._run(), name="broker-timeseries")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def sample_now(self) -> None:
        disk = await asyncio.to_thread(lambda: self.broker.store.disk_used_bytes)
        self.sampler.sample(time.time(), read_broker(self.broker, disk))

    async def _run(self) -> None:
        while True:  # the first sample one interval after start: starting pays nothing for it
            await asyncio.sleep(self.interval_ms / 1000)
            try:
                await self.sample_now()
            except Exception:
                log.exception("time-series sample failed")
