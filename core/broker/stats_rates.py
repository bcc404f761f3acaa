"""Rates from sampled counters, the way RocketMQ's StoreStatsService and StatsItem compute them
(sans-IO: the broker's sampler task passes the time in).

- Store rates (GET_BROKER_RUNTIME_INFO putTps, getTransferredTps): the put and get totals
  sampled every second, 601 samples kept; the figure is "tps(10) tps(60) tps(600)" over the last
  10, 60 and 600 seconds. Where RocketMQ leaves a figure empty until it has that many samples,
  ferrymq spans what it has (so a fresh broker shows a rate, not a blank).
- Stats items (VIEW_BROKER_STATS_DATA; consumeTps, topicPutTps): per key, (calls, value) sampled
  every 10 s (7 kept: the minute), every 10 min (7 kept: the hour) and every hour (25 kept: the
  day); the first sample of a window stands in for zero one period earlier. sum = value
  difference, tps = sum per second, avgpt = value per call.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

SECOND_SAMPLES = 601
#: (period ms, samples kept) of the minute, hour and day windows of a stats item
ITEM_WINDOWS = (("statsMinute", 10_000, 7), ("statsHour", 600_000, 7), ("statsDay", 3_600_000, 25))


class Snapshot(NamedTuple):
    at_ms: int
    calls: int
    value: int


def _tps(first: Snapshot, last: Snapshot) -> float:
    span = last.at_ms - first.at_ms
    return (last.value - first.value) * 1000.0 / span if span > 0 else 0.0


class StoreRate:
    """One store total sampled each second (StoreStatsService's CallSnapshot lists)."""

    def __init__(self) -> None:
        self.samples: deque[Snapshot] = deque(maxlen=SECOND_SAMPLES)

    def sample(self, now_ms: int, total: int) -> None:
        self.samples.append(Snapshot(now_ms, 0, total))

    def tps(self, seconds: int) -> float:
        if len(self.samples) < 2:
            return 0.0
        back = min(seconds, len(self.samples) - 1)
        return _tps(self.samples[-1 - back], self.samples[-1])

    def text(self) -> str:
        """RocketMQ's "10s 60s 600s" figure (mqadmin clusterList reads the first)."""
        return " ".join(repr(self.tps(s)) for s in (10, 60, 600))


class StatsItem:
    """A counter's minute, hour and day windows."""

    __slots__ = ("windows",)

    def __init__(self) -> None:
        self.windows = tuple(deque[Snapshot](maxlen=kept) for _, _, kept in ITEM_WINDOWS)

    def sample(self, level: int, now_ms: int, calls: int, value: int) -> None:
        window = self.windows[level]
        if not window:
            window.append(Snapshot(now_ms - ITEM_WINDOWS[level][1], 0, 0))
        window.append(Snapshot(now_ms, calls, value))

    def snapshot(self, level: int) -> dict[str, float | int]:
        window = self.windows[level]
        if not window:
            return {"sum": 0, "tps": 0.0, "avgpt": 0.0}
        first, last = window[0], window[-1]
        total = last.value - first.value
        calls = last.calls - first.calls
        return {"sum": total, "tps": _tps(first, last), "avgpt": total / calls if calls > 0 else 0.0}

    def data(self) -> dict[str, dict[str, float | int]]:
        """A BrokerStatsData body."""
        return {name: self.snapshot(level) for level, (name, _, _) in enumerate(ITEM_WINDOWS)}


class StatsItemSet:
    """The items of one stats name (TOPIC_PUT_NUMS, GROUP_GET_NUMS, ...), keyed as RocketMQ keys
    them; sampled from the counters the broker keeps anyway."""

    def __init__(self) -> None:
        self.items: dict[str, StatsItem] = {}

    def sample(self, level: int, now_ms: int, counters: dict[str, tuple[int, int]]) -> None:
        for key, (calls, value) in counters.items():
            item = self.items.get(key)
            if item is None:
                item = self.items[key] = StatsItem()
            item.sample(level, now_ms, calls, value)
