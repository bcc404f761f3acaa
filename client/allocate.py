"""Queue allocation among the members of a consumer group (clustering mode).

Every member computes the same answer from the same inputs: all queues of the topic sorted by
(topic, broker name, queue id) and all member client ids sorted as strings, as Java's
``RebalanceImpl`` sorts them. Each strategy returns, for the same inputs, exactly what the Java
client's class of the same name returns (``client/.../consumer/rebalance/``; compat-tests compare
them on generated inputs):

* :class:`AllocateMessageQueueAveragely` ("AVG", the default): member ``i`` takes one contiguous
  block, the first ``len(queues) % len(members)`` members one queue more.
* :class:`AllocateMessageQueueAveragelyByCircle` ("AVG_BY_CIRCLE"): queue ``i`` goes to member
  ``i % len(members)``, round robin.
* :class:`AllocateMessageQueueByMachineRoom` ("MACHINE_ROOM"): only queues on brokers named
  ``<room>@<name>`` with a room in ``consumer_idcs``, spread in blocks, the remainder round robin.
* :class:`AllocateMessageQueueConsistentHash` ("CONSISTENT_HASH"): a ring of ``virtual_nodes``
  MD5 points per member (``"<cid>-<i>"``); a queue goes to the first point at or after the hash of
  its ``MessageQueue [topic=..., brokerName=..., queueId=...]`` text. Members joining or leaving
  move few queues.
* :class:`AllocateMessageQueueByConfig` ("CONFIG"): a fixed list, whatever the group looks like.
* :class:`AllocateMachineRoomNearby` ("MACHINE_ROOM_NEARBY-<delegate>"): a delegate strategy
  applied per machine room (a resolver names the room of a queue and of a member); queues of a
  room without members are shared by all members.

A strategy raises ValueError for an empty client id, queue list or member list (Java's
IllegalArgumentException) and returns [] when ``current_cid`` is not a member.
"""

from __future__ import annotations

import hashlib
import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from ferrymq.client.message import MessageQueue

log = logging.getLogger("ferrymq.client")


class AllocateStrategy(Protocol):
    name: str

    def allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]: ...


def _check(group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]) -> bool:
    """``AbstractAllocateMessageQueueStrategy.check``."""
    if not current_cid:
        raise ValueError("currentCID is empty")
    if not mq_all:
        raise ValueError("mqAll is null or mqAll empty")
    if not cid_all:
        raise ValueError("cidAll is null or cidAll empty")
    if current_cid not in cid_all:
        log.info("consumer group %s: client %s is not in %s", group, current_cid, list(cid_all))
        return False
    return True


class _CheckedStrategy:
    """A strategy that first runs Java's ``check`` and allocates nothing to a non-member."""

    name: str

    def allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        if not _check(group, current_cid, mq_all, cid_all):
            return []
        return self._allocate(group, current_cid, mq_all, cid_all)

    def _allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        raise NotImplementedError


def allocate_averagely(
    current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
) -> list[MessageQueue]:
    """The block of ``mq_all`` (already sorted) that ``current_cid`` owns; [] if it is not a member."""
    if not current_cid or not mq_all or current_cid not in cid_all:
        return []
    index = list(cid_all).index(current_cid)
    n, members = len(mq_all), len(cid_all)
    mod = n % members
    average = 1 if n <= members else n // members + (1 if index < mod else 0)
    start = index * average if index < mod else index * average + mod
    count = min(average, n - start)
    return [mq_all[start + i] for i in range(max(0, count))]


class AllocateMessageQueueAveragely(_CheckedStrategy):
    """Java's default strategy (``AllocateMessageQueueAveragely``, name "AVG")."""

    name = "AVG"

    def _allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        return allocate_averagely(current_cid, mq_all, cid_all)


class AllocateMessageQueueAveragelyByCircle(_CheckedStrategy):
    """``AllocateMessageQueueAveragelyByCircle`` ("AVG_BY_CIRCLE"): round robin."""

    name = "AVG_BY_CIRCLE"

    def _allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        index = list(cid_all).index(current_cid)
        return list(mq_all[index :: len(cid_all)])


def java_split(text: str, sep: str) -> list[str]:
    """Java's ``String.split`` for a literal separator: trailing empty strings are dropped."""
    if not text:
        return [""]
    parts = text.split(sep)
    while parts and not parts[-1]:
        parts.pop()
    return parts


class AllocateMessageQueueByMachineRoom(_CheckedStrategy):
    """``AllocateMessageQueueByMachineRoom`` ("MACHINE_ROOM"): brokers named ``<room>@<name>``;
    only rooms in ``consumer_idcs`` are consumed."""

    name = "MACHINE_ROOM"

    def __init__(self, consumer_idcs: Iterable[str]) -> None:
        self.consumer_idcs = set(consumer_idcs)

    def _allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        index = list(cid_all).index(current_cid)
        pre = []
        for mq in mq_all:
            parts = java_split(mq.broker_name, "@")
            if len(parts) == 2 and parts[0] in self.consumer_idcs:
                pre.append(mq)
        mod, rem = divmod(len(pre), len(cid_all))
        result = pre[mod * index : mod * index + mod]
        if rem > index:
            result.append(pre[index + mod * len(cid_all)])
        return result


def md5_hash(key: str) -> int:
    """The consistent-hash ring's default hash: the first 4 bytes of MD5, big-endian, unsigned."""
    return int.from_bytes(hashlib.md5(key.encode()).digest()[:4], "big")


class AllocateMessageQueueConsistentHash(_CheckedStrategy):
    """``AllocateMessageQueueConsistentHash`` ("CONSISTENT_HASH") with ``ConsistentHashRouter``."""

    name = "CONSISTENT_HASH"

    def __init__(self, virtual_nodes: int = 10, hash_function: Callable[[str], int] | None = None) -> None:
        if virtual_nodes < 0:
            raise ValueError(f"illegal virtualNodeCnt :{virtual_nodes}")
        self.virtual_nodes = virtual_nodes
        self.hash_function = hash_function or md5_hash

    def _allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        ring: dict[int, str] = {}  # a later node with the same hash replaces an earlier one
        for cid in cid_all:
            for i in range(self.virtual_nodes):
                ring[self.hash_function(f"{cid}-{i}")] = cid
        if not ring:
            return []
        points = sorted(ring)
        result = []
        for mq in mq_all:
            pos = bisect_left(points, self.hash_function(str(mq)))
            owner = ring[points[pos if pos < len(points) else 0]]
            if owner == current_cid:
                result.append(mq)
        return result


class AllocateMessageQueueByConfig:
    """``AllocateMessageQueueByConfig`` ("CONFIG"): always the configured queues."""

    name = "CONFIG"

    def __init__(self, queues: Iterable[MessageQueue]) -> None:
        self.queues = list(queues)

    def allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        return list(self.queues)


class AllocateMachineRoomNearby(_CheckedStrategy):
    """``AllocateMachineRoomNearby``: ``delegate`` within each machine room.

    ``broker_room(mq)`` and ``consumer_room(client_id)`` name where a queue's broker and a member
    run; neither may return an empty name.
    """

    def __init__(
        self,
        delegate: AllocateStrategy,
        broker_room: Callable[[MessageQueue], str],
        consumer_room: Callable[[str], str],
    ) -> None:
        self.delegate = delegate
        self.broker_room = broker_room
        self.consumer_room = consumer_room
        self.name = f"MACHINE_ROOM_NEARBY-{delegate.name}"

    def _allocate(
        self, group: str, current_cid: str, mq_all: Sequence[MessageQueue], cid_all: Sequence[str]
    ) -> list[MessageQueue]:
        room_queues: dict[str, list[MessageQueue]] = {}
        for mq in mq_all:
            room = self.broker_room(mq)
            if not room:
                raise ValueError(f"Machine room is null for mq {mq}")
            room_queues.setdefault(room, []).append(mq)
        room_members: dict[str, list[str]] = {}
        for cid in cid_all:
            room = self.consumer_room(cid)
            if not room:
                raise ValueError(f"Machine room is null for consumer id {cid}")
            room_members.setdefault(room, []).append(cid)
        result: list[MessageQueue] = []
        mine = self.consumer_room(current_cid)
        local = room_queues.pop(mine, None)
        if local:
            result.extend(self.delegate.allocate(group, current_cid, local, room_members[mine]))
        for room in sorted(room_queues):  # Java keeps rooms in a TreeMap
            if room not in room_members:
                result.extend(self.delegate.allocate(group, current_cid, room_queues[room], cid_all))
        return result
