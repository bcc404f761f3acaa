"""Incremental fetch sessions (KIP-227): the broker remembers a consumer's partitions between fetches.

A full fetch with session epoch 0 creates a session (when the cache has a slot) and answers with its id;
the next fetches send only what changed (new fetch offsets, added partitions, forgotten ones) with the
next epoch, and the answer carries only the partitions with news: records, a moved high watermark, last
stable offset or log start, or an error. That keeps a 1,000-partition consumer's idle fetches small in
both directions. Sessions live in memory only: after a restart the client's next incremental fetch gets
FETCH_SESSION_ID_NOT_FOUND and it starts a full one, as with Apache Kafka.

Rules as Kafka's FetchManager and FetchSessionCache: epoch -1 ends a session (and is a sessionless full
fetch), epoch 0 starts one (ending the named one), any other epoch must be the session's next one
(INVALID_FETCH_SESSION_EPOCH) of a session that exists (FETCH_SESSION_ID_NOT_FOUND). The cache holds
``max_slots`` sessions (max.incremental.fetch.session.cache.slots); a new session takes a full cache's
slot from a session unused for ``eviction_ms``, else from the smallest session if that one has fewer
partitions, else it is not created (session id 0: the client keeps doing full fetches). Partitions that
returned records move to the end of the session's order, so a byte-limited fetch serves them in turn.
Pure state over request fields; the Fetch handler (apis/api01_fetch.py) does the reading.
A session remembers whether it was made by a request naming topics by id (v13+); a request of the other
kind on it is FETCH_SESSION_TOPIC_ID_ERROR, as Kafka. Partitions are kept by topic name (an id names
one topic for good, topic_ids.py).
Leaves out: follower (privileged) sessions.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_EPOCH = 0x7FFFFFFF

Key = tuple[str, int]


@dataclass(slots=True)
class SessionPartition:
    """What the client asked for one partition, and what it was last told about it."""

    topic: str
    partition: int
    fetch_offset: int
    partition_max_bytes: int
    log_start_offset: int = -1  # the fetcher's, as sent
    current_leader_epoch: int = -1
    # last answered, to decide whether an incremental response must carry the partition
    high_watermark: int = -2
    last_stable_offset: int = -2
    answered_log_start: int = -2

    def update_request(self, fetch_offset: int, partition_max_bytes: int, log_start: int, epoch: int) -> None:
        self.fetch_offset = fetch_offset
        self.partition_max_bytes = partition_max_bytes
        self.log_start_offset = log_start
        self.current_leader_epoch = epoch

    def must_answer(self, error: int, hw: int, lso: int, log_start: int, has_records: bool) -> bool:
        """Whether an incremental response carries this partition; remembers what it carries."""
        changed = has_records or error != 0
        if (
            hw != self.high_watermark
            or lso != self.last_stable_offset
            or log_start != self.answered_log_start
        ):
            changed = True
        # after an error the partition is re-sent when the error clears, as Kafka does
        self.high_watermark = -1 if error else hw
        self.last_stable_offset, self.answered_log_start = lso, log_start
        return changed


@dataclass(slots=True)
class FetchSession:
    id: int
    epoch: int  # the epoch the next incremental fetch must carry
    last_used: float
    partitions: dict[Key, SessionPartition] = field(default_factory=dict)
    topic_ids: bool = False

    def bump(self, now: float) -> None:
        self.epoch = 1 if self.epoch >= MAX_EPOCH else self.epoch + 1
        self.last_used = now

    def served_with_records(self, keys: Iterable[Key]) -> None:
        """Move these to the end of the order (fairness under max_bytes)."""
        for key in keys:
            part = self.partitions.pop(key, None)
            if part is not None:
                self.partitions[key] = part


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """What one Fetch request reads, and how it answers.

    ``error`` set: answer only that (top-level) error. ``incremental``: answer only the partitions whose
    ``must_answer`` says so. ``session_id``: the id to put in the response (0 = sessionless).
    """

    partitions: list[SessionPartition]
    session_id: int = INVALID_SESSION_ID
    incremental: bool = False
    error: str | None = None  # fetch_session_id_not_found | invalid_fetch_session_epoch | ..._topic_id_error
    session: FetchSession | None = None


class FetchSessionCache:
    """The broker's sessions, bounded by slot count; see the module docstring for the rules."""

    def __init__(self, max_slots: int = 1000, eviction_ms: int = 120_000, rng: random.Random | None = None):
        self.max_slots = max_slots
        self.eviction_s = eviction_ms / 1000
        self.sessions: dict[int, FetchSession] = {}
        self.evicted = 0
        self._rng = rng or random.Random()

    def plan(
        self,
        session_id: int,
        epoch: int,
        requested: list[SessionPartition],
        forgotten: Iterable[Key],
        now: float,
        topic_ids: bool = False,
    ) -> FetchPlan:
        """Apply one request's session fields; say which partitions to read and how to answer."""
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            if session_id != INVALID_SESSION_ID:
                self.sessions.pop(session_id, None)
            if epoch == FINAL_EPOCH or self.max_slots <= 0:
                return FetchPlan(requested)
            session = self._create(len(requested), now)
            if session is None:
                return FetchPlan(requested)
            session.topic_ids = topic_ids
            for part in requested:
                session.partitions[(part.topic, part.partition)] = part
            return FetchPlan(list(session.partitions.values()), session.id, session=session)
        session = self.sessions.get(session_id)
        if session is None:
            return FetchPlan([], error="fetch_session_id_not_found")
        if session.topic_ids != topic_ids:
            return FetchPlan([], session_id, error="fetch_session_topic_id_error")
        if session.epoch != epoch:
            return FetchPlan([], session_id, error="invalid_fetch_session_epoch")
        for part in requested:
            cached = session.partitions.get((part.topic, part.partition))
            if cached is None:
                session.partitions[(part.topic, part.partition)] = part
            else:
                cached.update_request(
                    part.fetch_offset,
                    part.partition_max_bytes,
                    part.log_start_offset,
                    part.current_leader_epoch,
                )
        for key in forgotten:
            session.partitions.pop(key, None)
        session.bump(now)
        return FetchPlan(list(session.partitions.values()), session.id, incremental=True, session=session)

    def _create(self, size: int, now: float) -> FetchSession | None:
        if len(self.sessions) >= self.max_slots and not self._evict_for(size, now):
            return None
        sid = INVALID_SESSION_ID
        while sid == INVALID_SESSION_ID or sid in self.sessions:
            sid = self._rng.randint(1, MAX_EPOCH)
        session = FetchSession(sid, 1, now)
        self.sessions[sid] = session
        return session

    def _evict_for(self, size: int, now: float) -> bool:
        stale = min(self.sessions.values(), key=lambda s: s.last_used)
        if now - stale.last_used > self.eviction_s:
            victim = stale
        else:
            victim = min(self.sessions.values(), key=lambda s: (len(s.partitions), s.last_used))
            if len(victim.partitions) >= size:
                return False
        del self.sessions[victim.id]
        self.evicted += 1
        return True
