"""The "consumer" protocol's opaque bytes: a member's subscription and its assignment.

The coordinator never needs them to run a group, only to show which topics a group reads (admin
views, OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC). Both start with an int16 version, and every
version extends version 0, so we read the version-0 prefix with kio, as Kafka's coordinator does.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import TypeVar

from kio.schema.consumer_protocol_assignment.v0.data import ConsumerProtocolAssignment
from kio.schema.consumer_protocol_assignment.v0.data import TopicPartition as AssignedPartitions
from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription
from kio.schema.consumer_protocol_subscription.v1.data import (
    ConsumerProtocolSubscription as SubscriptionV1,
)
from kio.schema.consumer_protocol_subscription.v3.data import (
    ConsumerProtocolSubscription as SubscriptionV3,
)
from kio.schema.types import TopicName
from kio.serial import entity_reader, entity_writer
from kio.serial.errors import SerialError
from kio.static.primitive import i32

_read_subscription = entity_reader(ConsumerProtocolSubscription)
_read_subscription_v1 = entity_reader(SubscriptionV1)
_read_subscription_v3 = entity_reader(SubscriptionV3)
_read_assignment = entity_reader(ConsumerProtocolAssignment)
_write_assignment = entity_writer(ConsumerProtocolAssignment)
T = TypeVar("T")


def _parsed(data: bytes, reader: Callable[[memoryview, int], tuple[T, int]], min_version: int) -> T | None:
    """The entity after the int16 version, if the version is at least ``min_version`` and it parses."""
    if len(data) < 2 or struct.unpack_from(">h", data)[0] < min_version:
        return None
    try:
        entity, _ = reader(memoryview(data), 2)
    except (SerialError, ValueError, IndexError, struct.error):
        return None
    return entity


def subscribed_topics(metadata: bytes) -> list[str] | None:
    """The topics of a JoinGroup "consumer" protocol metadata; None if it does not parse."""
    sub = _parsed(metadata, _read_subscription, 0)
    return None if sub is None else list(sub.topics)


def assigned_partitions(assignment: bytes) -> dict[str, list[int]] | None:
    """topic -> partitions of a SyncGroup "consumer" assignment; {} when empty; None if it does not parse."""
    if not assignment:
        return {}
    parsed = _parsed(assignment, _read_assignment, 0)
    if parsed is None:
        return None
    out: dict[str, list[int]] = {}
    for tp in parsed.assigned_partitions:
        out.setdefault(tp.topic, []).extend(int(p) for p in tp.partitions)
    return out


def owned_partitions(metadata: bytes) -> dict[str, frozenset[int]]:
    """topic -> partitions a member says it owns (subscription v1+); {} before v1 or if unreadable."""
    sub = _parsed(metadata, _read_subscription_v1, 1)
    if sub is None:
        return {}
    return {
        tp.topic: frozenset(int(p) for p in tp.partitions) for tp in sub.owned_partitions if tp.partitions
    }


def subscription_rack(metadata: bytes) -> str | None:
    """The rack a member names in its subscription (v3+, KIP-881's client.rack); None if none."""
    sub = _parsed(metadata, _read_subscription_v3, 3)
    return None if sub is None else (sub.rack_id or None)


def encode_assignment(parts: dict[str, frozenset[int]]) -> bytes:
    """A version-0 "consumer" assignment of these partitions, as SyncGroup hands it out."""
    assignment = ConsumerProtocolAssignment(
        assigned_partitions=tuple(
            AssignedPartitions(topic=TopicName(t), partitions=tuple(i32(p) for p in sorted(ps)))
            for t, ps in sorted(parts.items())
        ),
        user_data=None,
    )
    buf = io.BytesIO()
    buf.write(struct.pack(">h", 0))
    _write_assignment(buf, assignment)
    return buf.getvalue()
