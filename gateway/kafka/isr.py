"""acks=all in a broker group: Kafka's in-sync-replica rules over the group's replication state.

A partition's replicas are the master (the leader) and the slaves of its broker group; the
in-sync set is the master plus the slaves ``Broker.ha`` marks in sync. As Kafka's
Partition.checkEnoughReplicasReachOffset and DelayedProduce answer, an acks=-1 produce:

- is refused before the append with NOT_ENOUGH_REPLICAS when the in-sync set is smaller than the
  topic's min.insync.replicas (nothing stored);
- is answered once every in-sync slave acknowledged the batch's commit-log end (the group's high
  watermark reached it), with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the set is by then smaller than
  min.insync.replicas (a slave that leaves the set no longer holds the watermark back);
- gets REQUEST_TIMED_OUT when that takes longer than the request's timeout (stored on the master,
  perhaps not on a slave).

The decisions are sans-IO. ``wait_replicated`` drives them: ReplicationState wakes a waiter when
*one* slave reaches an offset; "every in-sync slave" and "a slave left the set" have no event of
their own there, so past the first acknowledgement the state is re-read every ``POLL_S`` (core/ha
belongs to another part of the work; an all-slaves event there would remove the poll).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from kio.schema.errors import ErrorCode

from ferrymq.core.ha.state import ReplicaInfo, ReplicationState
from ferrymq.core.remoting.route import TopicConfig

MIN_INSYNC_REPLICAS = "min.insync.replicas"
#: how often the wait re-reads the replication state when no single acknowledgement can end it
POLL_S = 0.02


def min_insync_replicas(tc: TopicConfig) -> int:
    try:
        return max(1, int(tc.attributes.get(MIN_INSYNC_REPLICAS, 1)))
    except ValueError:
        return 1


def before_append(min_isr: int, in_sync_slaves: int) -> ErrorCode:
    """Kafka refuses an acks=all append while the in-sync set (master included) is below min.insync."""
    return ErrorCode.none if 1 + in_sync_slaves >= min_isr else ErrorCode.not_enough_replicas


def replicated(replicas: Iterable[ReplicaInfo], end_offset: int) -> bool:
    """Every in-sync slave acknowledged ``end_offset``: the group's high watermark reached it."""
    return all(r.ack_offset >= end_offset for r in replicas if r.in_sync)


def after_wait(min_isr: int, in_sync_slaves: int) -> ErrorCode:
    """The verdict once replicated: the set may have shrunk below min.insync meanwhile."""
    return ErrorCode.none if 1 + in_sync_slaves >= min_isr else ErrorCode.not_enough_replicas_after_append


async def wait_replicated(ha: ReplicationState, end_offset: int, timeout_s: float) -> bool:
    """Wait until every in-sync slave acknowledged ``end_offset``; False after ``timeout_s``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, timeout_s)):
            while not replicated(ha.slaves.values(), end_offset):
                if ha.max_ack_offset() >= end_offset:  # one slave has it, another not yet: re-read
                    await asyncio.sleep(POLL_S)
                else:  # woken by the first acknowledgement of the end, or re-read after POLL_S
                    await ha.wait_for_slaves(end_offset, int(POLL_S * 1000))
            return True
    return False
