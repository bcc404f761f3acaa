"""Queue locks for orderly consumption (RocketMQ's ``RebalanceLockManager``).

An orderly consumer locks each queue it owns on the queue's broker (LOCK_BATCH_MQ) and renews
the locks every 20 s; a lock not renewed within ``rebalanceLockMaxLiveTime`` (60 s) is free for
another member. So two members never consume one queue at the same time, even while a rebalance
moves it. Locks live in memory only: after a broker restart every lock is free, and the owners
take them back on their next renewal.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger("ferrymq.locks")

#: a message queue as (topic, broker name, queue id)
QueueKey = tuple[str, str, int]


@dataclass(slots=True)
class LockEntry:
    client_id: str
    last_update: float  # monotonic seconds


class RebalanceLockManager:
    def __init__(self, max_live_ms: int = 60_000) -> None:
        self.max_live = max_live_ms / 1000
        self.table: dict[str, dict[QueueKey, LockEntry]] = {}

    def _expired(self, entry: LockEntry, now: float) -> bool:
        return now - entry.last_update > self.max_live

    def try_lock_batch(self, group: str, mqs: list[QueueKey], client_id: str) -> list[QueueKey]:
        """Lock (or renew) what is free, expired or already ours; returns the queues we hold."""
        now = time.monotonic()
        locks = self.table.setdefault(group, {})
        held = []
        for mq in mqs:
            entry = locks.get(mq)
            if entry is None:
                locks[mq] = LockEntry(client_id, now)
                log.info("group %s: %s locked %s", group, client_id, mq)
            elif entry.client_id == client_id:
                entry.last_update = now
            elif self._expired(entry, now):
                log.warning("group %s: %s took %s, expired for %s", group, client_id, mq, entry.client_id)
                entry.client_id = client_id
                entry.last_update = now
            else:
                continue
            held.append(mq)
        return held

    def unlock_batch(self, group: str, mqs: list[QueueKey], client_id: str) -> None:
        locks = self.table.get(group)
        if not locks:
            return
        for mq in mqs:
            entry = locks.get(mq)
            if entry is not None and entry.client_id == client_id:
                del locks[mq]
                log.info("group %s: %s unlocked %s", group, client_id, mq)
        if not locks:
            del self.table[group]

    def is_lock_all_expired(self, group: str) -> bool:
        """True when no member holds a live lock (the group does not consume orderly now)."""
        now = time.monotonic()
        return all(self._expired(e, now) for e in self.table.get(group, {}).values())

    def owner(self, group: str, mq: QueueKey) -> str | None:
        """Who holds a live lock on ``mq``, if anyone."""
        entry = self.table.get(group, {}).get(mq)
        if entry is None or self._expired(entry, time.monotonic()):
            return None
        return entry.client_id
