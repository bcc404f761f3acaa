"""acks=all in a broker group: Kafka's in-sync-replica rules over the group's replication state.

A partition's replicas are the master (the leader) and the slaves of its broker group; the
in-sync set is the master plus the slaves ``Broker.ha`` marks in sync (in controller mode the
controller's SyncStateSet, the one SYNC_MASTER sends wait for). As Kafka's
Partition.checkEnoughReplicasReachOffset and DelayedProduce answer, an acks=-1 produce:

- is refused before the append with NOT_ENOUGH_REPLICAS when the in-sync set is smaller than the
  topic's min.insync.replicas (nothing stored);
- is answered once every in-sync slave acknowledged the batch's commit-log end (the group's high
  watermark reached it), with NOT_ENOUGH_REPLICAS_AFTER_APPEND if the set is by then smaller than
  min.insync.replicas (a slave that leaves the set no longer holds the watermark back);
- gets REQUEST_TIMED_OUT when that takes longer than the request's timeout (stored on the master,
  perhaps not on a slave).

The decisions are sans-IO. ``wait_replicated`` drives them, re-reading the state at each ack or
departure of a slave (``ReplicationState.changed``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from kio.schema.errors import ErrorCode

from ferrymq.core.ha.state import ReplicaInfo, ReplicationState
from ferrymq.core.remoting.route import TopicConfig

MIN_INSYNC_REPLICAS = "min.insync.replicas"


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


def acked(ha: ReplicationState, end_offset: int) -> bool:
    """In controller mode the in-sync set is the controller's (as SYNC_MASTER sends wait for)."""
    if ha.config.enable_controller_mode:
        return ha.set_acked(end_offset)
    return replicated(ha.slaves.values(), end_offset)


async def wait_replicated(ha: ReplicationState, end_offset: int, timeout_s: float) -> bool:
    """Wait until every in-sync slave acknowledged ``end_offset``; False after ``timeout_s``."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(max(0.0, timeout_s)):
            while not acked(ha, end_offset):
                await ha.changed()
            return True
    return False
