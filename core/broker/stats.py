"""In and out counters per topic and request latency histograms (the admin API and metrics
read them)."""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferrymq.core.remoting.transport import RequestDispatcher


class BrokerStats:
    def __init__(self) -> None:
        self.put_messages = 0
        self.put_bytes = 0
        self.get_messages = 0
        self.get_bytes = 0
        self.topic_in: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.topic_out: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.latency = RequestLatency()

    def on_put(self, topic: str, messages: int, size: int) -> None:
        self.put_messages += messages
        self.put_bytes += size
        t = self.topic_in[topic]
        t[0] += messages
        t[1] += size

    def on_get(self, topic: str, messages: int, size: int) -> None:
        self.get_messages += messages
        self.get_bytes += size
        t = self.topic_out[topic]
        t[0] += messages
        t[1] += size


#: upper bounds (seconds) of the request-latency buckets: 50 µs to 10 s, then +Inf
LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class LatencyHistogram:
    """Counts per bucket (not cumulative; the exporter sums them) and the total, kept cheap:
    one bisect and two additions per observation."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


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
