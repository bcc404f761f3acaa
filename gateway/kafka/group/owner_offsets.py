"""Committed offsets of Kafka partitions, kept by the broker group that owns each partition.

A group's committed offset of partition p is stored as RocketMQ keeps it: in the offset store of
the broker group whose queue p is, as that group's offset of the queue (the one table native
consumers of the group read and write). So the offsets do not depend on which broker coordinates
the group, and a coordinator that moves (a broker group came or went) finds them where they were.

The coordinator writes its own queues' offsets directly; the others go to their owner's master
over remoting (UPDATE_CONSUMER_OFFSET / QUERY_CONSUMER_OFFSET, the requests RocketMQ consumers
send), concurrently, at most MAX_IN_FLIGHT at a time, each within TIMEOUT_S. An owner that cannot
be reached yields None for that partition (the APIs answer COORDINATOR_NOT_AVAILABLE, which
clients retry), never a guessed offset. The topics a group has offsets of anywhere (OffsetFetch
of all topics) are asked of every broker group (QUERY_TOPICS_BY_CONSUMER). With one broker group
nothing leaves the process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import RouteCodecError, TopicList
from ferrymq.core.remoting.transport import RemotingConnection, RemotingError

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker
    from ferrymq.gateway.kafka.cluster import ClusterView

log = logging.getLogger("ferrymq.kafka.group")

#: per request to an owner (and per connection attempt)
TIMEOUT_S = 3.0
#: requests to owners in flight at once, over every group
MAX_IN_FLIGHT = 32

#: a partition's queue at its owner: (queue id, owner's remoting address or None for this broker)
Located = tuple[int, str | None]


class OwnerOffsets:
    """Reads and writes a group's offsets of Kafka partitions at the partitions' owners."""

    def __init__(self, broker: Broker, cluster: ClusterView) -> None:
        self.broker = broker
        self.cluster = cluster
        self._conns: dict[str, RemotingConnection] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    def locate(self, topic: str, partition: int) -> Located | None:
        """Where partition's offset lives (placement as last fetched); None if its owner's address
        is unknown."""
        placed = self.cluster.placement(topic)
        owner = placed.owner_of(partition)
        if owner is None or owner.broker_name == self.cluster.broker_name:
            return partition - (owner.first if owner else 0), None
        addr = self.cluster.broker_addr(owner.broker_name)
        return (partition - owner.first, addr) if addr else None

    async def commit(self, group: str, entries: list[tuple[str, int, int]]) -> list[ErrorCode]:
        """Store (topic, partition, offset) entries (-1: drop the offset); an error each.

        Other negative offsets are stored and read back as Kafka does, where this broker owns the
        partition; an owner in another broker group stores them through UPDATE_CONSUMER_OFFSET,
        which forgets negative offsets as RocketMQ's QUERY_CONSUMER_OFFSET reports them (none)."""
        out = [ErrorCode.none] * len(entries)
        remote = []
        for i, (topic, partition, offset) in enumerate(entries):
            where = self.locate(topic, partition)
            if where is None:
                out[i] = ErrorCode.coordinator_not_available
            elif where[1] is None:
                if offset != -1:  # other negatives: sentinels clients commit (kafkajs: -2), kept
                    self.broker.offsets.commit(group, topic, where[0], offset)
                else:
                    self.broker.offsets.delete(group, topic, where[0])
            else:
                remote.append((i, self._update(where[1], group, topic, where[0], offset)))
        if remote:
            done = await asyncio.gather(*(c for _, c in remote))
            for (i, _), error in zip(remote, done, strict=True):
                out[i] = error
        return out

    async def fetch(self, group: str, entries: list[tuple[str, int]]) -> list[int | None]:
        """Committed offsets of (topic, partition) entries: -1 for none, None where unavailable."""
        out: list[int | None] = [-1] * len(entries)
        remote = []
        for i, (topic, partition) in enumerate(entries):
            where = self.locate(topic, partition)
            if where is None:
                out[i] = None
            elif where[1] is None:
                offset = self.broker.offsets.query(group, topic, where[0])
                out[i] = offset if offset is not None else -1
            else:
                remote.append((i, self._query(where[1], group, topic, where[0])))
        if remote:
            done = await asyncio.gather(*(c for _, c in remote))
            for (i, _), offset in zip(remote, done, strict=True):
                out[i] = offset
        return out

    async def topics(self, group: str) -> set[str] | None:
        """Topics the group has offsets of on any broker group (None: one could not be asked)."""
        found = set(self.broker.offsets.topics_of_group(group))
        asked = await asyncio.gather(*(self._topics_at(a, group) for a in self.cluster.other_broker_addrs()))
        for topics in asked:
            if topics is None:
                return None
            found |= topics
        return found

    async def delete_group(self, group: str) -> bool:
        """Delete the group at the other broker groups as mqadmin deleteSubGroup does (its
        subscription config and, with cleanOffset, its offsets); False if one could not be."""
        fields = {"groupName": group, "cleanOffset": "true"}
        addrs = self.cluster.other_broker_addrs()
        answers = await asyncio.gather(
            *(self._call(a, RequestCode.DELETE_SUBSCRIPTIONGROUP, fields) for a in addrs)
        )
        failed = [
            a for a, r in zip(addrs, answers, strict=True) if r is None or r.code != ResponseCode.SUCCESS
        ]
        if failed:
            log.warning("group %s not deleted at %s", group, ", ".join(failed))
        return not failed

    async def _topics_at(self, addr: str, group: str) -> set[str] | None:
        resp = await self._call(addr, RequestCode.QUERY_TOPICS_BY_CONSUMER, {"consumerGroup": group})
        if resp is None:
            return None
        try:
            if resp.code == ResponseCode.SUCCESS:
                return TopicList.from_json_bytes(resp.body).topic_list
        except (RouteCodecError, ValueError):
            pass
        log.warning("topics of group %s unreadable at %s: %s", group, addr, resp.remark)
        return None

    async def _update(self, addr: str, group: str, topic: str, queue: int, offset: int) -> ErrorCode:
        fields = {"consumerGroup": group, "topic": topic, "queueId": str(queue), "commitOffset": str(offset)}
        resp = await self._call(addr, RequestCode.UPDATE_CONSUMER_OFFSET, fields)
        if resp is None:
            return ErrorCode.coordinator_not_available
        if resp.code == ResponseCode.SUCCESS:
            return ErrorCode.none
        if resp.code == ResponseCode.TOPIC_NOT_EXIST:
            return ErrorCode.unknown_topic_or_partition
        log.warning("offset of %s/%s/%d not stored at %s: %s", group, topic, queue, addr, resp.remark)
        return ErrorCode.coordinator_not_available

    async def _query(self, addr: str, group: str, topic: str, queue: int) -> int | None:
        fields = {"consumerGroup": group, "topic": topic, "queueId": str(queue), "setZeroIfNotFound": "false"}
        resp = await self._call(addr, RequestCode.QUERY_CONSUMER_OFFSET, fields)
        if resp is None:
            return None
        if resp.code == ResponseCode.QUERY_NOT_FOUND:
            return -1
        try:
            if resp.code == ResponseCode.SUCCESS:
                offset = int(resp.ext_fields["offset"])
                return offset if offset >= 0 else -1
        except (KeyError, ValueError):
            pass
        log.warning("offset of %s/%s/%d unreadable at %s: %s", group, topic, queue, addr, resp.remark)
        return None

    async def _call(self, addr: str, code: int, fields: dict[str, str]) -> RemotingCommand | None:
        """One request to an owner on a kept connection; None (logged) if it cannot be had."""
        async with self._slots:
            try:
                conn = await self._conn(addr)
                return await conn.invoke(RemotingCommand(code=code, ext_fields=fields), timeout=TIMEOUT_S)
            except (RemotingError, OSError) as exc:
                log.warning("broker %s unreachable for group offsets: %s", addr, exc)
                return None

    async def _conn(self, addr: str) -> RemotingConnection:
        conn = self._conns.get(addr)
        if conn is not None and conn.is_open:
            return conn
        async with self._connecting.setdefault(addr, asyncio.Lock()):
            conn = self._conns.get(addr)
            if conn is None or not conn.is_open:
                conn = self._conns[addr] = await self.broker.outbound.connect(addr, timeout=TIMEOUT_S)
            return conn

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
