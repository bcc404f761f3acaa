"""Topic ids (KIP-516): a stable UUID per topic, derived from the cluster name and the topic name.

Derived, not stored: every broker group of a cluster (same brokerClusterName) computes the same id with
nothing to persist or agree on, and it survives restarts. Unlike Kafka, a topic deleted and created again
under the same name gets the same id (a client cannot tell the two apart; its offsets are checked against
the new log all the same). Lookups by id (Fetch v13+, Metadata and DeleteTopics by id,
DescribeTopicPartitions) go through a reverse map rebuilt when an id is not found in it and the
topic table changed since the last rebuild (its data version).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferrymq.core.broker.topic_config import TopicConfigManager

_NAMESPACE = uuid.UUID("6f1b0c8e-5d2a-4e0b-9a53-6b8f2d1c7e40")
ZERO = uuid.UUID(int=0)


@functools.lru_cache(maxsize=65536)
def topic_id(cluster: str, topic: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, f"{cluster}/{topic}")


class TopicIdIndex:
    """id -> topic name for one cluster's topics, rebuilt on a miss only if the topic table changed since."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self._names: dict[uuid.UUID, str] = {}
        self._built_at: object = None

    def name_of(self, tid: uuid.UUID, names: Iterable[str], version: object) -> str | None:
        """The topic with id ``tid`` among ``names`` (the broker's topics, whose table is at ``version``:
        an id asked for again and again, none of ours, costs no rebuild until a topic comes or goes)."""
        name = self._names.get(tid)
        if name is None and tid != ZERO and version != self._built_at:
            self._names = {topic_id(self.cluster, n): n for n in names}
            self._built_at = version
            name = self._names.get(tid)
        return name

    def name_in(self, tid: uuid.UUID, topics: TopicConfigManager) -> str | None:
        """:meth:`name_of` over a broker's topic table."""
        v = topics.data_version
        return self.name_of(tid, topics.topics, (v.timestamp, v.counter, v.state_version))
