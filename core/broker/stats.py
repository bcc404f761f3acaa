"""In and out counters per topic (the admin API and metrics read them)."""

from __future__ import annotations

from collections import defaultdict


class BrokerStats:
    def __init__(self) -> None:
        self.put_messages = 0
        self.put_bytes = 0
        self.get_messages = 0
        self.get_bytes = 0
        self.topic_in: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])
        self.topic_out: defaultdict[str, list[int]] = defaultdict(lambda: [0, 0])

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
