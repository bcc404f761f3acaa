"""In and out counters per topic (and per topic and group), their sampled rates, and request
latency histograms (the admin API, metrics and mqadmin's stats requests read them)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.stats_rates import ITEM_WINDOWS, StatsItemSet, StoreRate
from ferrymq.core.histogram import LATENCY_BUCKETS, LatencyHistogram

if TYPE_CHECKING:
    from ferrymq.core.remoting.transport import RequestDispatcher

__all__ = ["LATENCY_BUCKETS", "BrokerStats", "LatencyHistogram", "RequestLatency"]

#: RocketMQ's stats names served by VIEW_BROKER_STATS_DATA: (table, index of the value counted)
STATS_NAMES = {
    "TOPIC_PUT_NUMS": ("in", 0),
    "TOPIC_PUT_SIZE": ("in", 1),
    "GROUP_GET_NUMS": ("group", 0),
    "GROUP_GET_SIZE": ("group", 1),
}


def _now_ms() -> int:
    return int(time.time() * 1000)


class BrokerStats:
    """Counters bumped once per request (never per message), sampled once a second by the
    broker's sampler (:meth:`tick`) into RocketMQ's rate windows."""

    def __init__(self, clock_ms: Callable[[], int] = _now_ms) -> None:
        self.clock_ms = clock_ms
        self.put_messages = 0
        self.put_bytes = 0
        self.get_messages = 0
        self.get_bytes = 0
        #: topic -> [messages, bytes, requests]
        self.topic_in: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.topic_out: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        #: "topic@group" (RocketMQ's stats key) -> [messages, bytes, pulls]; native pulls only
        self.group_out: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        self.latency = RequestLatency()
        self.put_rate = StoreRate()
        self.get_rate = StoreRate()
        self.items = {name: StatsItemSet() for name in STATS_NAMES}
        self._last_ms = -1
        self._item_sampled = [-1 << 62] * len(ITEM_WINDOWS)

    def on_put(self, topic: str, messages: int, size: int) -> None:
        self.put_messages += messages
        self.put_bytes += size
        t = self.topic_in[topic]
        t[0] += messages
        t[1] += size
        t[2] += 1

    def on_get(self, topic: str, messages: int, size: int, group: str = "") -> None:
        self.get_messages += messages
        self.get_bytes += size
        t = self.topic_out[topic]
        t[0] += messages
        t[1] += size
        t[2] += 1
        if group:
            g = self.group_out[f"{topic}@{group}"]
            g[0] += messages
            g[1] += size
            g[2] += 1

    # ---- rates -------------------------------------------------------------------------------

    def tick(self) -> None:
        self.sample(self.clock_ms())

    def sample(self, now_ms: int) -> None:
        """Record the totals at ``now_ms``; each stats window is sampled when its period is due."""
        if now_ms <= self._last_ms:
            return
        self._last_ms = now_ms
        self.put_rate.sample(now_ms, self.put_messages)
        self.get_rate.sample(now_ms, self.get_messages)
        for level, (_, period, _) in enumerate(ITEM_WINDOWS):
            if now_ms - self._item_sampled[level] < period:
                continue
            self._item_sampled[level] = now_ms
            for name, (table, index) in STATS_NAMES.items():
                source = self.topic_in if table == "in" else self.group_out
                counters = {k: (v[2], v[index]) for k, v in source.items()}
                self.items[name].sample(level, now_ms, counters)

    def put_tps_text(self) -> str:
        return self.put_rate.text()

    def get_tps_text(self) -> str:
        return self.get_rate.text()

    def stats_data(self, name: str, key: str) -> dict[str, Any] | None:
        """A BrokerStatsData body, or None for an unknown name or key (RocketMQ's "not exist")."""
        items = self.items.get(name)
        item = items.items.get(key) if items is not None else None
        return item.data() if item is not None else None

    def minute_tps(self, name: str, key: str) -> float:
        items = self.items[name].items.get(key)
        return float(items.snapshot(0)["tps"]) if items is not None else 0.0


class RequestLatency:
    """Request latency histograms keyed by (protocol, request code or API key).

    The remoting dispatcher feeds it through its observer hook (:meth:`attach`); other
    frontends (Kafka) call :meth:`observe` with their own protocol name.
    """

    def __init__(self) -> None:
        self.histograms: dict[tuple[str, int], LatencyHistogram] = {}

    def observe(self, protocol: str, code: int, seconds: float) -> None:
        h = self.histograms.get((protocol, code))
        if h is None:
            h = self.histograms[(protocol, code)] = LatencyHistogram()
        h.observe(seconds)

    def observe_remoting(self, code: int, seconds: float) -> None:
        self.observe("remoting", code, seconds)

    def attach(self, dispatcher: RequestDispatcher) -> None:
        """Time every request the dispatcher handles (until its response is ready)."""
        dispatcher.observer = self.observe_remoting
