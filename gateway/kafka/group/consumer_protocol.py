"""The "consumer" protocol's opaque bytes: a member's subscription and its assignment.

The coordinator never needs them to run a group, only to show which topics a group reads (admin
views, OffsetDelete's GROUP_SUBSCRIBED_TO_TOPIC). Both start with an int16 version, and every
version extends version 0, so we read the version-0 prefix with kio, as Kafka's coordinator does.
"""

from __future__ import annotations

import struct

from kio.schema.consumer_protocol_assignment.v0.data import ConsumerProtocolAssignment
from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription
from kio.serial import entity_reader
from kio.serial.errors import SerialError

_read_subscription = entity_reader(ConsumerProtocolSubscription)
_read_assignment = entity_reader(ConsumerProtocolAssignment)


def subscribed_topics(metadata: bytes) -> list[str] | None:
    """The topics of a JoinGroup "consumer" protocol metadata; None if it does not parse."""
    if len(metadata) < 2 or struct.unpack_from(">h", metadata)[0] < 0:
        return None
    try:
        sub, _ = _read_subscription(memoryview(metadata), 2)
    except (SerialError, ValueError, IndexError, struct.error):
        return None
    return list(sub.topics)


def assigned_partitions(assignment: bytes) -> dict[str, list[int]] | None:
    """topic -> partitions of a SyncGroup "consumer" assignment; {} when empty; None if it does not parse."""
    if not assignment:
        return {}
    if len(assignment) < 2 or struct.unpack_from(">h", assignment)[0] < 0:
        return None
    try:
        parsed, _ = _read_assignment(memoryview(assignment), 2)
    except (SerialError, ValueError, IndexError, struct.error):
        return None
    out: dict[str, list[int]] = {}
    for tp in parsed.assigned_partitions:
        out.setdefault(tp.topic, []).extend(int(p) for p in tp.partitions)
    return out
