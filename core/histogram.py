"""A latency histogram cheap enough for request and flush paths: one bisect and two additions per
observation. The broker's request latencies and the store's flush times use it; /metrics
exports it."""

from __future__ import annotations

from bisect import bisect_left

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
