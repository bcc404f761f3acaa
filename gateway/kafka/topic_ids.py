"""Topic ids (KIP-516): a stable UUID per topic, derived from the cluster name and the topic name.

Derived, not stored: every broker group of a cluster (same brokerClusterName) computes the same id with
nothing to persist or agree on, and it survives restarts. Unlike Kafka, a topic deleted and created again
under the same name gets the same id (a client cannot tell the two apart; its offsets are checked against
the new log all the same). Lookups by id (Fetch v13+, Metadata and DeleteTopics by id,
DescribeTopicPartitions) go through a reverse map rebuilt only when an id is not found in it.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable

_NAMESPACE = uuid.UUID("6f1b0c8e-5d2a-4e0b-9a53-6b8f2d1c7e40")
ZERO = uuid.UUID(int=0)


@functools.lru_cache(maxsize=65536)
def topic_id(cluster: str, topic: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{cluster}/{topic}")


class TopicIdIndex:
    """id -> topic name for one cluster's topics, refreshed from the topic names on a miss."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._names: dict[uuid.UUID, str] = {}

    def name_of(self, tid: uuid.UUID, names: Iterable[str]) -> str | None:
        """The topic with id ``tid`` among ``names`` (the broker's topics), or None."""
        name = self._names.get(tid)
        if name is None and tid != ZERO:
            self._names = {topic_id(self.cluster, n): n for n in names}
            name = self._names.get(tid)
        return name
