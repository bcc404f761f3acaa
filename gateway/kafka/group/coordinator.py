"""The Kafka group coordinator of one broker: the asyncio driver of the group state machine, and
consumer-group offsets kept in the broker's own offset store.

``state.GroupManager`` is pure; this module gives it a clock, parks JoinGroup/SyncGroup requests on
futures until their results come out, and runs one timer task that wakes at the earliest group
deadline (rebalance timeout, initial delay, session expiry).

Offsets: a Kafka group's committed offset of partition p of topic t is the group's offset of
p's queue in the offset store of the broker group that owns the queue (owner_offsets.py), the same
``ConsumerOffsetManager`` native RocketMQ groups use and persist, so admin views, lag and resets
are one, and a coordinator that moves finds them. Kafka's optional commit metadata strings, which
that store has no room for, are kept beside it by the coordinator in
``config/kafkaOffsetMetadata.json`` (they do not move with it).

Only the group's coordinator (cluster.ClusterView.coordinator_of) serves it: the APIs ask
``serves`` first and answer NOT_COORDINATOR otherwise, and a broker that finds it no longer
coordinates a group drops the group's membership (its waiting members are told to look again),
so one group never runs on two brokers.

A group is active under one protocol at a time: a Kafka member cannot join a group that has live
native consumers (INCONSISTENT_GROUP_PROTOCOL), and a guard registered with the broker's
``ClientManager`` refuses native consumers of a group with live Kafka members.

KIP-848 consumer groups (consumer_group.py) live beside the classic ones, one group id in one of
them: an empty classic group becomes a consumer group when a consumer-protocol member joins it,
and an empty consumer group a classic one when a classic member joins it (Kafka does this under
every group.consumer.migration.policy). Under the policies ``upgrade`` and ``bidirectional`` a
classic "consumer" group with members is upgraded too, keeping its members as classic members of
the consumer group (classic_members.py), which JoinGroup/SyncGroup/Heartbeat/LeaveGroup then reach;
otherwise ConsumerGroupHeartbeat answers GROUP_ID_NOT_FOUND ("not a consumer group"). Under
``downgrade`` and ``bidirectional`` a consumer group whose last consumer-protocol member leaves
or is fenced while classic members remain becomes a classic group again (classic_members.downgrade)
and rebalances; the committed offsets, kept per partition owner, are untouched by either move.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from ferrymq.core.broker.group_views import GroupView, MemberView
from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.gateway.kafka.group import classic_members
from ferrymq.gateway.kafka.group.assignors import ASSIGNORS
from ferrymq.gateway.kafka.group.consumer_group import (
    ConsumerGroupConfig,
    ConsumerGroupManager,
    HeartbeatRequest,
    HeartbeatResult,
    TopicCatalog,
)
from ferrymq.gateway.kafka.group.consumer_protocol import subscribed_topics
from ferrymq.gateway.kafka.group.owner_offsets import OwnerOffsets
from ferrymq.gateway.kafka.group.state import (
    DescribedMember,
    GroupConfig,
    GroupManager,
    GroupState,
    GroupSummary,
    JoinRequest,
    JoinResult,
    Result,
    SyncRequest,
    SyncResult,
)

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.gateway.kafka.cluster import ClusterView

log = logging.getLogger("ferrymq.kafka.group")

#: Kafka's offset.metadata.max.bytes
OFFSET_METADATA_MAX_SIZE = 4096
#: ListGroups' group types: classic groups, and KIP-848's consumer groups
CLASSIC = "classic"
CONSUMER = "consumer"
#: protocol type shown for a group that native RocketMQ consumers hold: "", as Kafka shows its
#: simple groups, because the Java Admin and librdkafka drop or refuse any type but "consumer"
#: and "" (so kafka-consumer-groups.sh can list native groups and show their lag)
NATIVE_PROTOCOL_TYPE = ""
#: group.consumer.migration.policy values under which a classic group with members upgrades
UPGRADE_POLICIES = ("upgrade", "bidirectional")
#: group.consumer.migration.policy values under which a consumer group left to classic members downgrades
DOWNGRADE_POLICIES = ("downgrade", "bidirectional")
_ACTIVE = (GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE, GroupState.STABLE)


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    partition: int
    offset: int
    metadata: str
    error: ErrorCode = ErrorCode.none


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = CLASSIC


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


class GroupCoordinator:
    """This broker's classic Kafka groups; also a ``core.broker.group_views.GroupProvider``
    (protocol "kafka"): the admin API lists Kafka groups through it."""

    protocol = "kafka"

    def __init__(self, broker: Broker, cluster: ClusterView, config: GroupConfig | None = None) -> None:
        self.broker = broker
        self.cluster = cluster  # partitions of topics across broker groups, for offset commits
        self.owners = OwnerOffsets(broker, cluster)
        self.groups = GroupManager(config or _config_from(broker))
        self.consumers = ConsumerGroupManager(_consumer_config_from(broker))
        #: Kafka's group.consumer.migration.policy: whether classic groups with members upgrade
        self.migration_policy = broker.config.group_consumer_migration_policy.lower()
        self._tokens = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[Result]] = {}
        self._wakeup = asyncio.Event()
        self._scheduled: int | None = None
        #: empty groups are swept this often (a tenth of their retention, within 1 s - 1 min)
        self._sweep_ms = min(max(self.groups.config.empty_group_retention_ms // 10, 1000), 60_000)
        self._next_sweep = 0
        self._task: asyncio.Task[None] | None = None
        self._metadata_path = self.broker.config.store_path_root_dir / "config" / "kafkaOffsetMetadata.json"
        self._metadata: dict[str, dict[str, dict[int, str]]] = _load_metadata(self._metadata_path)
        self._metadata_save: asyncio.TimerHandle | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the timer task and claim Kafka groups against native consumers."""
        self.broker.clients.group_guards.append(self._native_refusal)
        self._task = asyncio.create_task(self._timers(), name="kafka-group-timers")

    async def stop(self) -> None:
        """Stop the timers; parked requests are dropped (their connections are closing)."""
        if self._native_refusal in self.broker.clients.group_guards:
            self.broker.clients.group_guards.remove(self._native_refusal)
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for fut in self._waiters.values():
            fut.cancel()
        self._waiters.clear()
        if self._metadata_save is not None:
            self._metadata_save.cancel()
            self._save_metadata()
        self.owners.close()

    async def _timers(self) -> None:
        while True:
            now = _now_ms()
            self.groups.tick(now)
            self._deliver()
            for group_id, member_id in self.consumers.tick(now):
                log.info("group %s: member %s fenced (session or rebalance timeout)", group_id, member_id)
                self._maybe_downgrade(group_id, now)
            if now >= self._next_sweep:
                self.groups.forget_empty(now)
                self.consumers.forget_empty(now)
                for group_id in [
                    g
                    for g in [*self.groups.groups, *self.consumers.groups]
                    if not self.cluster.coordinates(g)
                ]:
                    self._drop(group_id)
                self._next_sweep = now + self._sweep_ms
            self._wakeup.clear()
            self._scheduled = deadline = _earliest(
                self.groups.next_deadline(), self.consumers.next_deadline()
            )
            wake = self._next_sweep if deadline is None else min(deadline, self._next_sweep)
            timeout = max(0.0, (wake - now) / 1000)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wakeup.wait()

    def _after(self, group_id: str) -> None:
        """After a request: run timers already due, hand out results, re-arm the timer task."""
        group = self.groups.get(group_id)
        if group is not None:
            group.tick(_now_ms())
            deadline = group.next_deadline()
            if deadline is not None and (self._scheduled is None or deadline < self._scheduled):
                self._wakeup.set()
        self._deliver()

    def _deliver(self) -> None:
        for token, result in self.groups.drain():
            fut = self._waiters.pop(token, None)
            if fut is not None and not fut.done():
                fut.set_result(result)

    def _park(self) -> tuple[int, asyncio.Future[Result]]:
        token = next(self._tokens)
        fut: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiters[token] = fut
        return token, fut

    async def _wait(self, token: int, fut: asyncio.Future[Result]) -> Result:
        try:
            return await fut
        finally:
            self._waiters.pop(token, None)

    # ---- which broker serves a group ------------------------------------------------------

    async def serves(self, group_id: str) -> bool:
        """Whether this broker coordinates the group now (the APIs answer NOT_COORDINATOR if not).
        One it no longer coordinates is dropped here. An empty id is left to the APIs' own checks."""
        if not group_id:
            return True
        await self.cluster.refresh_peers()
        if self.cluster.coordinates(group_id):
            return True
        self._drop(group_id)
        return False

    def _drop(self, group_id: str) -> None:
        """Forget a group another broker coordinates now: its parked members get
        COORDINATOR_NOT_AVAILABLE and look for the coordinator again."""
        if self.groups.get(group_id) is None and self.consumers.get(group_id) is None:
            return
        self.consumers.delete(group_id)
        log.info(
            "group %s: coordinated by another broker group now; its membership here is dropped", group_id
        )
        self.groups.delete(group_id)
        self._deliver()

    # ---- cross-protocol rule ------------------------------------------------------------

    def native_consumers(self, group_id: str) -> int:
        """How many live native RocketMQ consumers the group has on this broker."""
        info = self.broker.clients.consumer_group(group_id)
        return len(info.channels) if info is not None else 0

    def _native_refusal(self, group_id: str) -> str | None:
        group = self.groups.get(group_id)
        consumers = self.consumers.get(group_id)
        n = len(group.members) if group is not None and group.has_members else 0
        n += len(consumers.members) if consumers is not None else 0
        if not n:
            return None
        return (
            f"consumer group {group_id} is active as a Kafka consumer group "
            f"({n} Kafka members); a group is active under one protocol at a time"
        )

    def _refuse_kafka(self, group_id: str, peer: str, what: str) -> bool:
        n = self.native_consumers(group_id)
        if n:
            log.warning(
                "kafka %s from %s refused: consumer group %s is active as a native RocketMQ group "
                "(%d consumers); a group is active under one protocol at a time",
                what,
                peer,
                group_id,
                n,
            )
        return n > 0

    # ---- membership ---------------------------------------------------------------------

    async def join(self, group_id: str, req: JoinRequest, peer: str) -> JoinResult:
        if group_id and self._refuse_kafka(group_id, peer, f"JoinGroup of {req.client_id}"):
            return JoinResult(ErrorCode.inconsistent_group_protocol, req.member_id)
        consumers = self.consumers.get(group_id)
        if consumers is not None:
            if consumers.members:  # a classic member of a consumer group (an upgrade under way)
                topics = dict.fromkeys(
                    subscribed_topics(req.protocols[0][1]) or () if req.protocols else (), -1
                )
                await self.cluster.placements(topics)
                result = classic_members.join(consumers, req, _Topics(self), _now_ms())
                self._rearm()
                return result
            self.consumers.delete(group_id)  # an empty consumer group becomes a classic one
        token, fut = self._park()
        self.groups.join(group_id, req, token, _now_ms())
        self._after(group_id)
        result = await self._wait(token, fut)
        assert isinstance(result, JoinResult)
        return result

    async def sync(self, group_id: str, req: SyncRequest) -> SyncResult:
        consumers = self.consumers.get(group_id)
        if consumers is not None:
            return classic_members.sync(consumers, req, _now_ms())
        token, fut = self._park()
        self.groups.sync(group_id, req, token, _now_ms())
        self._after(group_id)
        result = await self._wait(token, fut)
        assert isinstance(result, SyncResult)
        return result

    def consumer_heartbeat(self, req: HeartbeatRequest, catalog: TopicCatalog, peer: str) -> HeartbeatResult:
        """ConsumerGroupHeartbeat: a KIP-848 member joins, heartbeats, reconciles or leaves."""
        group_id = req.group_id
        if group_id and self._refuse_kafka(group_id, peer, f"ConsumerGroupHeartbeat of {req.client_id}"):
            return HeartbeatResult(
                ErrorCode.inconsistent_group_protocol, f"Group {group_id} has live RocketMQ consumers."
            )
        classic = self.groups.get(group_id)
        now = _now_ms()
        if classic is not None and classic.state not in (GroupState.DEAD, GroupState.EMPTY):
            if not (self.migration_policy in UPGRADE_POLICIES and classic_members.convertible(classic)):
                log.info(
                    "ConsumerGroupHeartbeat of %s from %s refused: group %s is a classic group with members "
                    "(groupConsumerMigrationPolicy=%s)",
                    req.client_id,
                    peer,
                    group_id,
                    self.migration_policy,
                )
                return HeartbeatResult(
                    ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group."
                )
            log.info(
                "group %s: classic group with %d members upgraded to a consumer group",
                group_id,
                len(classic.members),
            )
            self.consumers.groups[group_id] = classic_members.convert(classic, self.consumers.config, now)
        elif classic is not None and classic.state == GroupState.EMPTY:
            log.info("group %s: empty classic group converted to a consumer group", group_id)
        if classic is not None:
            self.groups.delete(group_id)  # members waiting in a rebalance rejoin, into the consumer group
            self._deliver()
        result = self.consumers.heartbeat(req, catalog, now)
        self._maybe_downgrade(group_id, now)
        self._rearm()
        return result

    def _maybe_downgrade(self, group_id: str, now: int) -> None:
        """A consumer group left with classic members only becomes a classic group again."""
        consumers = self.consumers.get(group_id)
        if consumers is None or not classic_members.downgradable(consumers):
            return
        if self.migration_policy not in DOWNGRADE_POLICIES:
            log.info(
                "group %s: only classic members remain; not downgraded (groupConsumerMigrationPolicy=%s)",
                group_id,
                self.migration_policy,
            )
            return
        self.consumers.delete(group_id)
        self.groups.delete(group_id)
        classic_members.downgrade(consumers, self.groups.get_or_create(group_id), now)
        log.info(
            "group %s: downgraded from consumer to classic with %d members", group_id, len(consumers.members)
        )
        self._after(group_id)

    def _rearm(self) -> None:
        deadline = self.consumers.next_deadline()
        if deadline is not None and (self._scheduled is None or deadline < self._scheduled):
            self._wakeup.set()

    def heartbeat(
        self, group_id: str, member_id: str, group_instance_id: str | None, generation_id: int
    ) -> ErrorCode:
        consumers = self.consumers.get(group_id)
        if consumers is not None:
            error = classic_members.heartbeat(consumers, member_id, generation_id, _Topics(self), _now_ms())
            self._rearm()
            return error
        error = self.groups.heartbeat(group_id, member_id, group_instance_id, generation_id, _now_ms())
        self._after(group_id)
        return error

    def leave(
        self, group_id: str, members: list[tuple[str, str | None]]
    ) -> tuple[ErrorCode, list[ErrorCode]]:
        consumers = self.consumers.get(group_id)
        if consumers is not None:
            now = _now_ms()
            errors = [classic_members.leave(consumers, m, now) for m, _ in members]
            self._maybe_downgrade(group_id, now)
            return ErrorCode.none, errors
        result = self.groups.leave(group_id, members, _now_ms())
        self._after(group_id)
        return result

    # ---- offsets ------------------------------------------------------------------------

    async def commit_offsets(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        topics: Iterable[tuple[str, Iterable[tuple[int, int, str | None]]]],
        api_version: int,
        peer: str,
    ) -> list[tuple[str, list[tuple[int, ErrorCode]]]]:
        """Store (partition, offset, metadata) per topic; an error per partition, as the response has."""
        topics = [(t, list(parts)) for t, parts in topics]
        held = [(t, p) for t, parts in topics for p, _, _ in parts]
        error = self.check_committer(
            group_id, member_id, group_instance_id, generation_id, api_version, peer, partitions=held
        )
        out: list[tuple[str, list[tuple[int, ErrorCode]]]] = []
        stored: list[tuple[str, int, int]] = []  # offset -1: "no offset", as OffsetFetch reports it
        stored_at: list[tuple[list[tuple[int, ErrorCode]], int, str]] = []  # its result, metadata
        for topic, partitions in topics:
            n = self.cluster.partition_count(topic)
            results: list[tuple[int, ErrorCode]] = []
            for partition, offset, meta in partitions:
                if error is not None:
                    results.append((partition, error))
                elif not 0 <= partition < n:
                    results.append((partition, ErrorCode.unknown_topic_or_partition))
                elif meta is not None and len(meta) > OFFSET_METADATA_MAX_SIZE:
                    results.append((partition, ErrorCode.offset_metadata_too_large))
                else:
                    stored.append((topic, partition, offset))
                    stored_at.append((results, len(results), meta or ""))
                    results.append((partition, ErrorCode.none))
            out.append((topic, results))
        metadata_changed = False
        errors = await self.owners.commit(group_id, stored) if stored else []
        for (topic, partition, _), (results, i, meta), e in zip(stored, stored_at, errors, strict=True):
            results[i] = (partition, e)
            if e == ErrorCode.none:
                metadata_changed |= self._set_metadata(group_id, topic, partition, meta)
        if error is not None and error != ErrorCode.rebalance_in_progress:
            log.info("group %s: offset commit from %s refused: %s", group_id, peer, error.name)
        if metadata_changed:
            self._schedule_metadata_save()
        self._after(group_id)
        return out

    def check_committer(
        self,
        group_id: str,
        member_id: str,
        group_instance_id: str | None,
        generation_id: int,
        api_version: int,
        peer: str,
        what: str = "OffsetCommit",
        partitions: Iterable[tuple[str, int]] = (),
    ) -> ErrorCode | None:
        """Why a commit of this member must be refused (None: it may commit): OffsetCommit's and
        KIP-447's TxnOffsetCommit v3+ check of the group, generation, member and instance id."""
        if not group_id:
            return ErrorCode.invalid_group_id
        if self._refuse_kafka(group_id, peer, what):
            return ErrorCode.inconsistent_group_protocol
        consumers = self.consumers.get(group_id)
        if consumers is not None:
            # KIP-848: the generation is the member epoch; transactional commits may use any version
            version = api_version if what == "OffsetCommit" else 9
            return consumers.validate_offset_commit(member_id, generation_id, version, partitions)
        group = self.groups.get(group_id)
        if group is not None:
            return group.validate_offset_commit(member_id, group_instance_id, generation_id, _now_ms())
        if generation_id >= 0:
            # a member of a group that is gone (e.g. the broker restarted): make it rejoin
            return ErrorCode.group_id_not_found if api_version >= 9 else ErrorCode.illegal_generation
        return None

    def check_fetcher(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode | None:
        """OffsetFetch v9's check of a consumer-protocol member (None: it may fetch)."""
        consumers = self.consumers.get(group_id)
        return consumers.validate_offset_fetch(member_id, member_epoch) if consumers is not None else None

    async def apply_offsets(self, group_id: str, entries: list[tuple[str, int, int, str]]) -> list[ErrorCode]:
        """Store (topic, partition, offset, metadata) entries without a member check: a committed
        transaction's offsets (the check was made when TxnOffsetCommit took them). An error each."""
        errors = await self.owners.commit(group_id, [(t, p, o) for t, p, o, _ in entries])
        changed = False
        for (topic, partition, _, meta), e in zip(entries, errors, strict=True):
            if e == ErrorCode.none:
                changed |= self._set_metadata(group_id, topic, partition, meta)
        if changed:
            self._schedule_metadata_save()
        return errors

    async def fetch_offsets(
        self, group_id: str, topics: Iterable[tuple[str, Iterable[int]]] | None
    ) -> tuple[ErrorCode, list[tuple[str, list[PartitionOffset]]]]:
        """Committed offsets of the given partitions (None: every partition with an offset), from
        their owners; one whose owner cannot be reached carries COORDINATOR_NOT_AVAILABLE."""
        if not group_id:
            return ErrorCode.invalid_group_id, []
        listed = topics is None
        if topics is None:  # topics with offsets on any broker group
            names = await self.owners.topics(group_id)
            if names is None:
                return ErrorCode.coordinator_not_available, []
            await self.cluster.placements(dict.fromkeys(names, -1))
            topics = [(t, self._partitions_of(group_id, t)) for t in sorted(names)]
        else:
            topics = [(t, list(parts)) for t, parts in topics]
            await self.cluster.placements({t: max(parts, default=-1) for t, parts in topics})
        entries = [(t, p) for t, parts in topics for p in parts]
        found = iter(await self.owners.fetch(group_id, entries))
        meta = self._metadata.get(group_id, {})
        out = []
        for topic, partitions in topics:
            topic_meta = meta.get(topic, {})
            results = []
            for p in partitions:
                offset = next(found)
                if offset is None:
                    results.append(PartitionOffset(p, -1, "", ErrorCode.coordinator_not_available))
                elif offset != -1 or not listed:
                    results.append(PartitionOffset(p, offset, topic_meta.get(p, "")))
            if results or not listed:
                out.append((topic, results))
        return ErrorCode.none, out

    def _partitions_of(self, group_id: str, topic: str) -> list[int]:
        """Partitions of ``topic`` that may hold an offset of the group: with this broker the
        topic's only owner, those it has one for; else every partition (asked of the owners)."""
        placed = self.cluster.placement(topic)
        if len(placed.owners) <= 1 and (placed.local is not None or not placed.owners):
            return sorted(self.broker.offsets.offsets_of(group_id, topic))
        return list(range(placed.total))

    def _set_metadata(self, group_id: str, topic: str, partition: int, metadata: str) -> bool:
        per_topic = self._metadata.get(group_id, {}).get(topic, {})
        if per_topic.get(partition, "") == metadata:
            return False
        if metadata:
            self._metadata.setdefault(group_id, {}).setdefault(topic, {})[partition] = metadata
        else:
            per_topic.pop(partition, None)
        return True

    def _schedule_metadata_save(self) -> None:
        if self._metadata_save is None:
            self._metadata_save = asyncio.get_running_loop().call_later(1.0, self._save_metadata)

    def _save_metadata(self) -> None:
        self._metadata_save = None
        data = {
            g: {t: {str(p): m for p, m in parts.items()} for t, parts in topics.items() if parts}
            for g, topics in self._metadata.items()
        }
        write_json_atomic(self._metadata_path, {g: t for g, t in data.items() if t})

    # ---- describing, listing, deleting --------------------------------------------------

    async def describe(self, group_id: str) -> GroupSummary:
        """A group as DescribeGroups shows it: Kafka's, a live native group's, Empty with offsets
        on some broker group, or Dead if unknown."""
        if self.consumers.get(group_id) is not None:
            # Kafka 4 before DescribeGroups v6: a consumer group is "Dead" to the classic API
            return GroupSummary(group_id, GroupState.DEAD, "", "", ())
        group = self.groups.get(group_id)
        if group is not None and (group.has_members or not self.native_consumers(group_id)):
            return group.summary()
        info = self.broker.clients.consumer_group(group_id)
        if info is not None and info.channels:
            members = tuple(
                DescribedMember(
                    ch.client_id, None, ch.client_id, "/" + ch.conn.peer.rsplit(":", 1)[0], b"", b""
                )
                for ch in sorted(info.channels.values(), key=lambda c: c.client_id)
            )
            return GroupSummary(group_id, GroupState.STABLE, NATIVE_PROTOCOL_TYPE, "", members)
        if group_id and await self._offsets_exist(group_id) != ErrorCode.group_id_not_found:
            return GroupSummary(group_id, GroupState.EMPTY, "", "", ())
        return GroupSummary(group_id, GroupState.DEAD, "", "", ())

    def list_groups(self, states: Iterable[str] = (), types: Iterable[str] = ()) -> list[ListedGroup]:
        """Kafka groups, live native groups, and groups that only have committed offsets here,
        of those this broker coordinates (a client lists every broker and merges)."""
        listed: dict[str, ListedGroup] = {}
        for group_id in self.broker.offsets.groups():
            listed[group_id] = ListedGroup(group_id, "", GroupState.EMPTY.value)
        for group_id, group in self.groups.groups.items():
            if group.state != GroupState.DEAD:
                listed[group_id] = ListedGroup(group_id, group.protocol_type or "", group.state.value)
        for group_id, cgroup in self.consumers.groups.items():
            listed[group_id] = ListedGroup(group_id, CONSUMER, cgroup.state, CONSUMER)
        for group_id in list(self.broker.clients.consumers):
            if self.native_consumers(group_id) and not self._native_refusal(group_id):
                listed[group_id] = ListedGroup(group_id, NATIVE_PROTOCOL_TYPE, GroupState.STABLE.value)
        want_states = {s.lower() for s in states}
        want_types = {t.lower() for t in types}
        return [
            g
            for _, g in sorted(listed.items())
            if self.cluster.coordinates(g.group_id)  # each group listed by its coordinator only
            and (not want_states or g.state.lower() in want_states)
            and (not want_types or g.group_type in want_types)
        ]

    async def delete_group(self, group_id: str) -> ErrorCode:
        """DeleteGroups for one group: its membership and every committed offset, on every broker
        group (there with its subscription config, as mqadmin deleteSubGroup does)."""
        if not group_id:
            return ErrorCode.invalid_group_id
        if self.native_consumers(group_id):
            return ErrorCode.non_empty_group
        group = self.groups.get(group_id)
        consumers = self.consumers.get(group_id)
        if (group is not None and group.state in _ACTIVE) or (consumers is not None and consumers.members):
            return ErrorCode.non_empty_group
        if (
            group is None
            and consumers is None
            and (error := await self._offsets_exist(group_id)) != ErrorCode.none
        ):
            return error
        if not await self.owners.delete_group(group_id):
            return ErrorCode.coordinator_not_available
        self.groups.delete(group_id)
        self.consumers.delete(group_id)
        self.broker.offsets.delete_group(group_id)
        self.broker.offsets.persist()
        if self._metadata.pop(group_id, None):
            self._schedule_metadata_save()
        log.info("group %s deleted", group_id)
        self._deliver()
        return ErrorCode.none

    async def delete_offsets(
        self, group_id: str, topics: Iterable[tuple[str, Iterable[int]]]
    ) -> tuple[ErrorCode, list[tuple[str, list[tuple[int, ErrorCode]]]]]:
        """OffsetDelete: drop committed offsets (at their owners) of topics the group does not
        consume now."""
        if not group_id:
            return ErrorCode.invalid_group_id, []
        if self.native_consumers(group_id):
            return ErrorCode.non_empty_group, []
        group = self.groups.get(group_id)
        consumers = self.consumers.get(group_id)
        if consumers is not None and consumers.members:
            group = None  # a live consumer group: offsets of topics it subscribes to stay
        elif group is None and (error := await self._offsets_exist(group_id)) != ErrorCode.none:
            return error, []
        active = group is not None and group.state in _ACTIVE
        if group is not None and active and group.protocol_type != "consumer":
            return ErrorCode.non_empty_group, []
        topics = [(t, list(parts)) for t, parts in topics]
        await self.cluster.placements({t: max(parts, default=-1) for t, parts in topics})
        out = []
        dropped: list[tuple[str, int, int]] = []
        for topic, partitions in topics:
            subscribed = (group is not None and active and group.is_subscribed_to(topic)) or (
                consumers is not None and bool(consumers.members) and consumers.is_subscribed_to(topic)
            )
            error = ErrorCode.group_subscribed_to_topic if subscribed else ErrorCode.none
            out.append((topic, [(p, error) for p in partitions]))
            if not subscribed:
                dropped += [(topic, p, -1) for p in partitions]
        errors = iter(await self.owners.commit(group_id, dropped) if dropped else [])
        metadata_changed = False
        for topic, results in out:
            for i, (p, e) in enumerate(results):
                if e == ErrorCode.none:
                    results[i] = (p, e := next(errors))
                    if e == ErrorCode.none:
                        metadata_changed |= self._set_metadata(group_id, topic, p, "")
        if metadata_changed:
            self._schedule_metadata_save()
        return ErrorCode.none, out

    async def _offsets_exist(self, group_id: str) -> ErrorCode:
        """NONE if the group has an offset on some broker group, else GROUP_ID_NOT_FOUND
        (COORDINATOR_NOT_AVAILABLE when a broker group cannot be asked)."""
        if group_id in self.broker.offsets.groups():
            return ErrorCode.none
        topics = await self.owners.topics(group_id)
        if topics is None:
            return ErrorCode.coordinator_not_available
        return ErrorCode.none if topics else ErrorCode.group_id_not_found

    # ---- GroupProvider (the admin API's view) ------------------------------------------

    def group_names(self) -> list[str]:
        classic = [g for g, group in self.groups.groups.items() if group.state != GroupState.DEAD]
        return classic + [g for g in self.consumers.groups if g not in classic]

    def group_state(self, group_id: str) -> GroupView | None:
        consumers = self.consumers.get(group_id)
        if consumers is not None and consumers.members:
            cmembers = [
                MemberView(
                    m.member_id, m.client_host.lstrip("/"), f"kafka consumer protocol ({m.client_id})", ""
                )
                for m in consumers.members.values()
            ]
            topics = {t: "*" for t in sorted(consumers.subscribed_topics())}
            return GroupView(group_id, "kafka", consumers.state, cmembers, topics)
        group = self.groups.get(group_id)
        if group is None or not group.members:
            return None
        members = [
            MemberView(m.member_id, m.client_host.lstrip("/"), f"kafka ({m.client_id})", "")
            for m in group.members.values()
        ]
        subscriptions = {t: "*" for t in sorted(group.subscribed_topics or ())}
        return GroupView(group_id, "kafka", group.state.value, members, subscriptions)


def _config_from(broker: Broker) -> GroupConfig:
    """Kafka's group.* settings: groupInitialRebalanceDelayMs, groupMin/MaxSessionTimeoutMs."""
    cfg = broker.config
    return GroupConfig(
        min_session_timeout_ms=cfg.group_min_session_timeout_ms,
        max_session_timeout_ms=cfg.group_max_session_timeout_ms,
        initial_rebalance_delay_ms=cfg.group_initial_rebalance_delay_ms,
        new_member_join_timeout_ms=GroupConfig().new_member_join_timeout_ms,
    )


def _consumer_config_from(broker: Broker) -> ConsumerGroupConfig:
    """Kafka's group.consumer.* settings."""
    cfg = broker.config
    named = [a.strip() for a in cfg.group_consumer_assignors.split(",") if a.strip()]
    if unknown := [a for a in named if a not in ASSIGNORS]:
        log.warning("groupConsumerAssignors: unknown assignors %s left out (known: %s)", unknown, ASSIGNORS)
    assignors = tuple(a for a in named if a in ASSIGNORS)
    return ConsumerGroupConfig(
        session_timeout_ms=cfg.group_consumer_session_timeout_ms,
        heartbeat_interval_ms=cfg.group_consumer_heartbeat_interval_ms,
        assignors=assignors or ConsumerGroupConfig().assignors,
    )


class _Topics:
    """Topic partition counts from the cluster's cached routes (classic members name topics; no regex)."""

    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.cluster = coordinator.cluster

    def partition_count(self, topic: str) -> int:
        return self.cluster.partition_count(topic)

    def topic_names(self) -> list[str]:
        return []

    def partition_racks(self, topic: str) -> list[frozenset[str]]:
        return self.cluster.partition_racks(topic)


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _load_metadata(path: Path) -> dict[str, dict[str, dict[int, str]]]:
    data = read_json(path)
    out: dict[str, dict[str, dict[int, str]]] = {}
    if isinstance(data, dict):
        for group, topics in data.items():
            if isinstance(topics, dict):
                out[group] = {
                    str(t): {int(p): str(m) for p, m in parts.items()}
                    for t, parts in topics.items()
                    if isinstance(parts, dict)
                }
    return out
