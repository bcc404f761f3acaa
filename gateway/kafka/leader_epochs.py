"""Kafka leader epochs over controller-mode master epochs.

A partition's leader epoch is its broker group's master epoch (the controller's): it rises at
each election, so a client that cached an older leader learns of the change (FENCED_LEADER_EPOCH
from a broker that moved on, UNKNOWN_LEADER_EPOCH from one that has not heard of it yet). Outside
controller mode every partition has had one leader epoch, 0.

OffsetForLeaderEpoch answers from the group's epoch history (core/ha/epoch.py, commit-log
ranges per master epoch), mapped to the partition's queue offsets: the end of epoch e is the
first queue offset whose entry starts at or after the next epoch's start, and never past the
high watermark (consumers cannot have read beyond it). Sans-IO but for reading the broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from ferrymq.core.ha.epoch import EpochEntry

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

#: Kafka's UNDEFINED_EPOCH and UNDEFINED_EPOCH_OFFSET
UNDEFINED = -1


def current_epoch(broker: Broker) -> int:
    """The master epoch this broker last acted on (the controller client's state); 0 outside
    controller mode. The one place the Kafka frontend reads it."""
    controller = broker.controller
    return max(controller.epoch, 0) if controller is not None else 0


def epoch_history(broker: Broker) -> list[EpochEntry]:
    """The store's epoch entries, oldest first (empty outside controller mode, or before the
    epoch file is wired into role changes)."""
    epochs = getattr(broker, "epochs", None)  # core/ha/epoch.py EpochFile, set at role changes
    return list(epochs.entries) if epochs is not None else []


def check_epoch(broker: Broker, requested: int) -> ErrorCode:
    """A request's current_leader_epoch against ours (-1: the client does not say)."""
    if requested < 0:
        return ErrorCode.none
    ours = current_epoch(broker)
    if requested < ours:
        return ErrorCode.fenced_leader_epoch
    if requested > ours:
        return ErrorCode.unknown_leader_epoch
    return ErrorCode.none


def end_of_epoch(broker: Broker, topic: str, queue_id: int, epoch: int) -> tuple[int, int]:
    """(epoch, end offset) as Kafka's leader answers OffsetForLeaderEpoch: the largest epoch at
    most ``epoch`` and the queue offset where it ends; the current epoch ends at the high
    watermark; (UNDEFINED, UNDEFINED) for an epoch older than the whole history."""
    store = broker.store
    hw = store.readable_bounds(topic, queue_id)[1]
    current = current_epoch(broker)
    if epoch >= current:
        return current, hw
    history = epoch_history(broker)
    found = None
    for i, e in enumerate(history):
        if e.epoch <= epoch:
            found = i
    if found is None:
        return (UNDEFINED, UNDEFINED) if history else (current, hw)
    if found + 1 >= len(history):  # the newest recorded epoch: it has not ended here
        return history[found].epoch, hw
    end_phys = history[found + 1].start
    return history[found].epoch, min(store.queue_offset_at(topic, queue_id, end_phys), hw)
