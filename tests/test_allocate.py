"""Allocation strategies (ferrymq.client.allocate): the properties every member relies on and
the Java arithmetic on small known cases. Exact agreement with the Java classes on generated
inputs is checked in compat-tests/test_allocation_conformance.py."""

from __future__ import annotations

import pytest

from ferrymq.client import (
    AllocateMachineRoomNearby,
    AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle,
    AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom,
    AllocateMessageQueueConsistentHash,
    MessageQueue,
)
from ferrymq.client.allocate import java_split, md5_hash


def queues(n: int, brokers: tuple[str, ...] = ("broker-a",)) -> list[MessageQueue]:
    return sorted(MessageQueue("T", b, q) for b in brokers for q in range(n))


def cids(n: int) -> list[str]:
    return sorted(f"10.0.0.{i}@pid{i}" for i in range(n))


def assignment(strategy, mqs, members):  # type: ignore[no-untyped-def]
    return {cid: strategy.allocate("g", cid, mqs, members) for cid in members}


@pytest.mark.parametrize(
    "strategy",
    [
        AllocateMessageQueueAveragely(),
        AllocateMessageQueueAveragelyByCircle(),
        AllocateMessageQueueConsistentHash(),
    ],
    ids=lambda s: s.name,
)
def test_every_queue_has_exactly_one_owner(strategy) -> None:  # type: ignore[no-untyped-def]
    for n_queues in (1, 3, 8, 13, 32):
        for n_members in (1, 2, 3, 5, 9, 40):
            mqs, members = queues(n_queues, ("broker-a", "broker-b")), cids(n_members)
            owned = assignment(strategy, mqs, members)
            flat = [mq for got in owned.values() for mq in got]
            assert sorted(flat) == mqs, (strategy.name, n_queues, n_members)


def test_averagely_blocks_and_circle_round_robin() -> None:
    mqs, members = queues(8), cids(3)
    avg = assignment(AllocateMessageQueueAveragely(), mqs, members)
    assert [[mq.queue_id for mq in avg[c]] for c in members] == [[0, 1, 2], [3, 4, 5], [6, 7]]
    circle = assignment(AllocateMessageQueueAveragelyByCircle(), mqs, members)
    assert [[mq.queue_id for mq in circle[c]] for c in members] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    # more members than queues: the last ones get nothing
    avg = assignment(AllocateMessageQueueAveragely(), queues(2), cids(3))
    assert [len(avg[c]) for c in cids(3)] == [1, 1, 0]
    # not a member: nothing; bad input: ValueError as Java's IllegalArgumentException
    assert AllocateMessageQueueAveragely().allocate("g", "stranger", mqs, members) == []
    with pytest.raises(ValueError):
        AllocateMessageQueueAveragely().allocate("g", members[0], [], members)


def test_consistent_hash_moves_only_what_the_newcomer_takes() -> None:
    strategy = AllocateMessageQueueConsistentHash()
    mqs = queues(64)
    before = assignment(strategy, mqs, cids(4))
    after = assignment(strategy, mqs, cids(5))
    newcomer = sorted(set(cids(5)) - set(cids(4)))[0]
    owner_before = {mq: c for c, got in before.items() for mq in got}
    for cid, got in after.items():
        for mq in got:
            assert cid == newcomer or owner_before[mq] == cid
    assert md5_hash("a") == 0x0CC175B9  # md5("a") = 0cc175b9...


def test_machine_room_strategies() -> None:
    mqs = queues(4, ("hz@broker-a", "sh@broker-b", "bj@broker-c"))
    members = cids(3)
    by_room = AllocateMessageQueueByMachineRoom({"hz", "sh"})
    owned = assignment(by_room, mqs, members)
    flat = sorted(mq for got in owned.values() for mq in got)
    assert flat == [mq for mq in mqs if not mq.broker_name.startswith("bj@")]
    assert [len(owned[c]) for c in members] == [3, 3, 2]  # 8 queues: blocks of 2, then the remainder

    rooms = {members[0]: "hz", members[1]: "hz", members[2]: "sh"}
    nearby = AllocateMachineRoomNearby(
        AllocateMessageQueueAveragely(), lambda mq: mq.broker_name.split("@")[0], rooms.__getitem__
    )
    assert nearby.name == "MACHINE_ROOM_NEARBY-AVG"
    owned = assignment(nearby, mqs, members)
    # each room's queues stay in the room; bj has no consumer, so everyone shares it
    assert {mq.broker_name for mq in owned[members[2]]} == {"sh@broker-b", "bj@broker-c"}
    assert all(mq.broker_name != "sh@broker-b" for mq in owned[members[0]] + owned[members[1]])
    assert sorted(mq for got in owned.values() for mq in got) == mqs

    fixed = AllocateMessageQueueByConfig(mqs[:2])
    assert fixed.allocate("g", "anyone", mqs, members) == mqs[:2]


def test_java_split_drops_trailing_empty_strings() -> None:
    assert java_split("a@b", "@") == ["a", "b"]
    assert java_split("a@", "@") == ["a"]
    assert java_split("a@b@", "@") == ["a", "b"]
    assert java_split("@b", "@") == ["", "b"]
    assert java_split("", "@") == [""]
