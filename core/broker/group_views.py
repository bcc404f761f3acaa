"""Consumer groups of every protocol, one view: who is in a group (from its protocol's
membership) and how far it is behind (committed offsets from the broker's one offset table,
which native RocketMQ groups and Kafka groups share).

Plain data beside core's group hooks (``ClientManager.group_guards``), so that every frontend
can show a group without importing another: membership comes from :class:`GroupProvider`
objects. The native provider reads the broker's heartbeat table; a protocol frontend (the Kafka
group coordinator) implements the same interface and is handed to the admin API by the
``ferrymq`` command (see ``frontend_view.FrontendView``). A group that only has committed
offsets and no provider claiming it is shown as native with no members.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


@dataclass(slots=True)
class MemberView:
    client_id: str
    address: str
    client: str  # language or client software
    version: str
    last_seen_ms_ago: int | None = None
    subscriptions: dict[str, str] = field(default_factory=dict)  # this member's: topic -> expression


@dataclass(slots=True)
class GroupView:
    """A group as its protocol knows it; ``members`` empty means nobody is consuming now."""

    name: str
    protocol: str  # "native" or "kafka"
    state: str
    members: list[MemberView] = field(default_factory=list)
    subscriptions: dict[str, str] = field(default_factory=dict)  # topic -> expression
    consume_type: str | None = None
    message_model: str | None = None


class GroupProvider(Protocol):
    """Membership of one protocol's groups (the Kafka coordinator implements this too)."""

    protocol: str

    def group_names(self) -> Iterable[str]: ...

    def group_state(self, group: str) -> GroupView | None: ...


class NativeGroups:
    """RocketMQ consumer groups from heartbeats (``ClientManager``)."""

    protocol = "native"

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def group_names(self) -> Iterable[str]:
        return list(self.broker.clients.consumers)

    def group_state(self, group: str) -> GroupView | None:
        info = self.broker.clients.consumer_group(group)
        if info is None or not info.channels:
            return None
        now = time.monotonic()
        members = [
            MemberView(
                ch.client_id,
                ch.conn.peer,
                ch.language,
                str(ch.version),
                int((now - ch.last_update) * 1000),
                dict(sorted(info.client_subscriptions.get(ch.client_id, {}).items())),
            )
            for ch in sorted(info.channels.values(), key=lambda c: c.client_id)
        ]
        return GroupView(
            group,
            "native",
            "Online",
            members,
            {t: s.sub_string for t, s in sorted(info.subscriptions.items())},
            info.consume_type,
            info.message_model,
        )


@dataclass(slots=True)
class QueueProgress:
    topic: str
    queue_id: int
    broker_offset: int
    committed_offset: int | None
    lag: int
    last_store_time: int | None


class GroupRegistry:
    """Every provider, and the lag arithmetic over the broker's offsets and store."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.providers: list[GroupProvider] = []
        self.native = NativeGroups(broker)

    def add(self, provider: GroupProvider) -> None:
        self.providers.append(provider)

    def names(self) -> list[str]:
        names = set(self.broker.offsets.groups()) | set(self.native.group_names())
        for p in self.providers:
            names.update(p.group_names())
        return sorted(names)

    def state(self, group: str) -> GroupView | None:
        """The group's membership; None when no protocol knows it (it may still have offsets)."""
        for p in self.providers:
            st = p.group_state(group)
            if st is not None:
                return st
        st = self.native.group_state(group)
        if st is not None:
            return st
        for p in self.providers:
            if group in set(p.group_names()):
                return GroupView(group, p.protocol, "Empty")
        return None

    def exists(self, group: str) -> bool:
        return group in self.broker.offsets.groups() or self.state(group) is not None

    def topics(self, group: str, state: GroupView | None) -> list[str]:
        topics = set(self.broker.offsets.topics_of_group(group))
        if state is not None:
            topics.update(state.subscriptions)
        return sorted(topics)

    def progress(self, group: str, topics: Iterable[str]) -> list[QueueProgress]:
        store = self.broker.store
        out: list[QueueProgress] = []
        for topic in topics:
            committed = self.broker.offsets.offsets_of(group, topic)
            tc = self.broker.topics.get(topic)
            n = max(tc.read_queue_nums, tc.write_queue_nums) if tc else 0
            for qid in sorted(set(range(n)) | set(committed)):
                hi = store.max_offset(topic, qid)
                lo = store.min_offset(topic, qid)
                done = committed.get(qid)
                lag = max(0, hi - max(done, lo)) if done is not None else hi - lo
                last = store.queue_store_timestamp(topic, qid, hi - 1) if hi > lo else None
                out.append(QueueProgress(topic, qid, hi, done, lag, last))
        return out

    def total_lag(self, group: str) -> int:
        return sum(p.lag for p in self.progress(group, self.topics(group, self.state(group))))
