"""Producers and consumers known from HEART_BEAT, per group (RocketMQ's ConsumerManager and
ProducerManager).

Every broker learns every member of a group through heartbeats, so GET_CONSUMER_LIST_BY_GROUP on
any broker answers the whole group. A client that stops heartbeating expires after
channelExpiredTimeout; a closed connection removes it at once. Membership changes are reported
through ``on_consumer_change`` so the broker can send NOTIFY_CONSUMER_IDS_CHANGED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ferrymq.core.remoting.subscription import SubscriptionData
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.clients")


@dataclass(slots=True)
class ClientChannel:
    client_id: str
    conn: RemotingConnection
    language: str
    version: int
    last_update: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class ConsumerGroupInfo:
    group: str
    consume_type: str = "CONSUME_PASSIVELY"
    message_model: str = "CLUSTERING"
    consume_from_where: str = "CONSUME_FROM_LAST_OFFSET"
    channels: dict[RemotingConnection, ClientChannel] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionData] = field(default_factory=dict)
    #: per client id, what it subscribed to (to report members that subscribe differently)
    client_subscriptions: dict[str, dict[str, str]] = field(default_factory=dict)

    def client_ids(self) -> list[str]:
        return sorted({c.client_id for c in self.channels.values()})


ConsumerChange = Callable[[str, ConsumerGroupInfo], None]

#: why native consumers may not join a group now, or None if they may. A frontend of another
#: protocol (Kafka) registers one, since a group is active under one protocol at a time.
GroupGuard = Callable[[str], str | None]


class ClientManager:
    def __init__(self, on_consumer_change: ConsumerChange | None = None) -> None:
        self.consumers: dict[str, ConsumerGroupInfo] = {}
        self.producers: dict[str, dict[RemotingConnection, ClientChannel]] = {}
        self.on_consumer_change = on_consumer_change
        self.group_guards: list[GroupGuard] = []
        self._producer_turn = 0

    # ---- producers ---------------------------------------------------------------------------

    def register_producer(self, group: str, channel: ClientChannel) -> None:
        channels = self.producers.setdefault(group, {})
        old = channels.get(channel.conn)
        if old is None:
            channels[channel.conn] = channel
            log.info("producer %s joined group %s from %s", channel.client_id, group, channel.conn.peer)
        else:
            old.last_update = channel.last_update

    def producer_channel(self, group: str) -> ClientChannel | None:
        """A live producer of ``group``, round-robin (``ProducerManager.getAvailableChannel``):
        whom the transaction checker asks about a half message of that group."""
        channels = self.producers.get(group)
        if not channels:
            return None
        live = [ch for ch in channels.values() if ch.conn.is_open]
        if not live:
            return None
        self._producer_turn = (self._producer_turn + 1) % (1 << 30)
        return live[self._producer_turn % len(live)]

    def unregister_producer(self, group: str, conn: RemotingConnection) -> None:
        channels = self.producers.get(group)
        if channels and channels.pop(conn, None) is not None and not channels:
            del self.producers[group]

    # ---- consumers ---------------------------------------------------------------------------

    def register_consumer(
        self,
        group: str,
        channel: ClientChannel,
        consume_type: str,
        message_model: str,
        consume_from_where: str,
        subscriptions: list[SubscriptionData],
    ) -> bool:
        """Record a consumer heartbeat; True if the group's membership changed."""
        info = self.consumers.get(group)
        if info is None:
            info = self.consumers[group] = ConsumerGroupInfo(group)
        info.consume_type = consume_type
        info.message_model = message_model
        info.consume_from_where = consume_from_where
        changed = False
        old = info.channels.get(channel.conn)
        if old is None:
            info.channels[channel.conn] = channel
            changed = True
            log.info("consumer %s joined group %s from %s", channel.client_id, group, channel.conn.peer)
        else:
            old.last_update = channel.last_update
        for sub in subscriptions:
            cur = info.subscriptions.get(sub.topic)
            if cur is None or sub.sub_version > cur.sub_version:
                info.subscriptions[sub.topic] = sub
        info.client_subscriptions[channel.client_id] = {s.topic: s.sub_string for s in subscriptions}
        self._warn_inconsistent(info)
        if changed and self.on_consumer_change:
            self.on_consumer_change(group, info)
        return changed

    def consumer_group_refusal(self, group: str) -> str | None:
        """Why a native consumer may not join ``group`` now (another protocol holds it), or None."""
        for guard in self.group_guards:
            reason = guard(group)
            if reason:
                return reason
        return None

    def _warn_inconsistent(self, info: ConsumerGroupInfo) -> None:
        views = {cid: subs for cid, subs in info.client_subscriptions.items()}
        distinct = {tuple(sorted(v.items())) for v in views.values()}
        if len(distinct) > 1:
            log.warning(
                "consumer group %s: members subscribe differently, messages may be missed: %s",
                info.group,
                "; ".join(f"{cid}={subs}" for cid, subs in sorted(views.items())),
            )

    def inconsistent_groups(self) -> dict[str, dict[str, dict[str, str]]]:
        out = {}
        for group, info in self.consumers.items():
            if len({tuple(sorted(v.items())) for v in info.client_subscriptions.values()}) > 1:
                out[group] = dict(info.client_subscriptions)
        return out

    def unregister_consumer(self, group: str, conn: RemotingConnection) -> None:
        info = self.consumers.get(group)
        if info is None:
            return
        ch = info.channels.pop(conn, None)
        if ch is None:
            return
        log.info("consumer %s left group %s", ch.client_id, group)
        if not any(c.client_id == ch.client_id for c in info.channels.values()):
            info.client_subscriptions.pop(ch.client_id, None)
        if not info.channels:
            del self.consumers[group]
        if self.on_consumer_change:
            self.on_consumer_change(group, info)

    def consumer_group(self, group: str) -> ConsumerGroupInfo | None:
        return self.consumers.get(group)

    def find_subscription(self, group: str, topic: str) -> SubscriptionData | None:
        info = self.consumers.get(group)
        return info.subscriptions.get(topic) if info else None

    # ---- liveness ----------------------------------------------------------------------------

    def on_connection_closed(self, conn: RemotingConnection) -> None:
        for group in [g for g, info in self.consumers.items() if conn in info.channels]:
            self.unregister_consumer(group, conn)
        for group in [g for g, chans in self.producers.items() if conn in chans]:
            self.unregister_producer(group, conn)

    def scan_expired(self, timeout_s: float, now: float | None = None) -> int:
        """Drop clients silent for longer than ``timeout_s``; returns how many went."""
        now = time.monotonic() if now is None else now
        gone = 0
        for group, info in list(self.consumers.items()):
            for conn, ch in list(info.channels.items()):
                if now - ch.last_update > timeout_s:
                    log.warning("consumer %s of group %s expired", ch.client_id, group)
                    self.unregister_consumer(group, conn)
                    conn.close()
                    gone += 1
        for group, chans in list(self.producers.items()):
            for conn, ch in list(chans.items()):
                if now - ch.last_update > timeout_s:
                    log.warning("producer %s of group %s expired", ch.client_id, group)
                    self.unregister_producer(group, conn)
                    gone += 1
        return gone
