"""Partitions across broker groups (sans-IO): which broker owns which Kafka partition of a topic.

A topic's queues live on one or more broker groups. Kafka sees them as one partition range: the
groups sorted by broker name, partitions numbered cumulatively (broker-a's queues 0..n-1 are
partitions 0..n-1, broker-b's are n..n+m-1), so every broker computes the same numbering from
the same route. A group's Kafka node id is derived from its broker name alone (CRC-32), so it is
stable and independent of which other groups exist.
"""

from __future__ import annotations

import bisect
import dataclasses
import zlib
from collections.abc import Mapping

#: leader id of a partition whose broker has no Kafka listener (Metadata: LEADER_NOT_AVAILABLE)
NO_LEADER = -1


def node_id_of(broker_name: str) -> int:
    """The Kafka node id of a broker group: a non-negative int32 from its name."""
    return zlib.crc32(broker_name.encode()) & 0x7FFFFFFF


@dataclasses.dataclass(frozen=True, slots=True)
class Owner:
    broker_name: str
    node_id: int
    first: int  # its queue 0 is this partition
    count: int


@dataclasses.dataclass(frozen=True, slots=True)
class TopicPartitions:
    """The partition range of one topic; ``local`` is this broker's part, if it has one."""

    owners: tuple[Owner, ...]
    local: Owner | None
    total: int

    def queue_of(self, partition: int) -> int | None:
        """This broker's queue id for ``partition``, or None when another broker owns it.

        With this broker the only owner every partition maps to itself (the caller's usual
        checks answer unknown ones); with several owners one nobody owns maps to -1.
        """
        local = self.local
        if not self.owners or (len(self.owners) == 1 and local is not None):
            return partition
        if local is not None and local.first <= partition < local.first + local.count:
            return partition - local.first
        if 0 <= partition < self.total:
            return None
        return -1

    def partition_of(self, queue_id: int) -> int:
        return queue_id if self.local is None else self.local.first + queue_id

    def leader(self, partition: int, has_kafka: Mapping[str, bool]) -> int:
        """Node id of the partition's owner (NO_LEADER when it has no Kafka listener)."""
        starts = [o.first for o in self.owners]
        i = bisect.bisect_right(starts, partition) - 1
        if i < 0:
            return NO_LEADER
        owner = self.owners[i]
        return owner.node_id if has_kafka.get(owner.broker_name, False) else NO_LEADER


def place(queue_counts: Mapping[str, int], local_name: str) -> TopicPartitions:
    """Number the queues of every broker group (``queue_counts``: broker name -> queues)."""
    owners = []
    first = 0
    local = None
    for name in sorted(queue_counts):
        count = queue_counts[name]
        if count <= 0:
            continue
        owner = Owner(name, node_id_of(name), first, count)
        owners.append(owner)
        if name == local_name:
            local = owner
        first += count
    return TopicPartitions(tuple(owners), local, first)
