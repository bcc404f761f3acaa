"""A slave's epoch bookkeeping in controller mode (core/ha/epoch_sync.py): before following it
cuts what the new master never had and drops its own entries from there; while following it
records the master's epochs whose start its log has reached (per received chunk); histories with
no common epoch are never cut. Plus the GET_BROKER_EPOCH_CACHE body (RocketMQ's EpochEntryCache)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.ha.epoch import (
    EpochEntry,
    EpochFile,
    EpochRefused,
    decode_epoch_cache,
    encode_epoch_cache,
    to_adopt,
)
from ferrymq.core.ha.epoch_sync import EpochFollower, MasterNotReady, NoConsistentPoint
from ferrymq.core.store import MessageStore
from tests.test_store_support import open_store, put, read_all

E = EpochEntry
T = "SyncT"


def _store_with(root: Path, n: int) -> tuple[MessageStore, list[int]]:
    """A store holding n messages on one queue; the commit-log offset where each one starts."""
    store = open_store(root)
    return store, [put(store, T, 0, f"m{i}".encode()).phys_offset for i in range(n)]


def test_to_adopt_takes_the_masters_newer_epochs() -> None:
    master = [E(1, 0), E(2, 100), E(4, 300)]
    assert to_adopt([], master) == master
    assert to_adopt([E(1, 0)], master) == [E(2, 100), E(4, 300)]
    assert to_adopt([E(1, 0), E(2, 100), E(4, 300)], master) == []


def test_rejoining_old_master_cuts_its_diverged_tail(tmp_path: Path) -> None:
    store, starts = _store_with(tmp_path / "s", 10)
    epochs = EpochFile(tmp_path / "s" / "epochFileCheckpoint")
    epochs.append(1, 0)  # it was master of epoch 1 and wrote all 10
    end = store.commit_log_max_offset
    # the new master had the first 6 when it was elected at epoch 2, then wrote more
    master = [E(1, 0), E(2, starts[6])]
    follower = EpochFollower(store, epochs, 2)
    point = asyncio.run(follower.align(master, starts[6] + 5000))
    assert point == starts[6] == store.commit_log_max_offset < end
    assert [m.body for m in read_all(store, T, 0)] == [f"m{i}".encode() for i in range(6)]
    assert store.max_offset(T, 0) == 6
    # epoch 2 starts where the log now ends: recorded at once
    assert epochs.entries == [E(1, 0), E(2, starts[6])]
    assert EpochFile(epochs.path).entries == epochs.entries  # durably
    store.close()


def test_own_newer_epoch_past_the_point_is_dropped(tmp_path: Path) -> None:
    store, starts = _store_with(tmp_path / "s", 8)
    epochs = EpochFile(tmp_path / "s" / "epochFileCheckpoint")
    epochs.append(1, 0)
    epochs.append(3, starts[5])  # elected at 3 while the others went on at 2 (a lost epoch)
    master = [E(1, 0), E(2, starts[4]), E(4, starts[4] + 10_000)]
    point = asyncio.run(EpochFollower(store, epochs, 4).align(master, starts[4] + 20_000))
    assert point == starts[4]
    assert epochs.entries == [E(1, 0), E(2, starts[4])]  # 3 gone; 2 reached; 4 not yet
    store.close()


def test_new_replica_records_epochs_as_its_log_reaches_them(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    epochs = EpochFile(tmp_path / "s" / "epochFileCheckpoint")
    follower = EpochFollower(store, epochs, 3)
    master = [E(1, 0), E(2, 100), E(3, 200)]
    assert asyncio.run(follower.align(master, 250)) == 0
    assert epochs.entries == [E(1, 0)]
    follower.reached(99)
    assert epochs.entries == [E(1, 0)]
    follower.reached(150)
    assert epochs.entries == [E(1, 0), E(2, 100)]
    follower.reached(250)  # past two starts in one chunk: both
    assert epochs.entries == master
    follower.reached(400)  # nothing pending: no write
    assert EpochFile(epochs.path).entries == master
    store.close()


def test_no_common_epoch_cuts_nothing(tmp_path: Path) -> None:
    store, _ = _store_with(tmp_path / "s", 5)
    end = store.commit_log_max_offset
    epochs = EpochFile(tmp_path / "s" / "epochFileCheckpoint")
    epochs.append(5, 0)
    with pytest.raises(NoConsistentPoint):
        asyncio.run(EpochFollower(store, epochs, 7).align([E(6, 0), E(7, 40)], 80))
    assert store.commit_log_max_offset == end and store.max_offset(T, 0) == 5
    assert epochs.entries == [E(5, 0)]
    store.close()


def test_master_not_yet_at_the_named_epoch_is_not_followed(tmp_path: Path) -> None:
    store, _ = _store_with(tmp_path / "s", 3)
    epochs = EpochFile(tmp_path / "s" / "epochFileCheckpoint")
    epochs.append(1, 0)
    with pytest.raises(MasterNotReady):
        asyncio.run(EpochFollower(store, epochs, 2).align([E(1, 0)], 10))
    with pytest.raises(MasterNotReady):
        asyncio.run(EpochFollower(store, epochs, 2).align([], 0))
    assert store.max_offset(T, 0) == 3 and epochs.entries == [E(1, 0)]
    store.close()


def test_epoch_cache_body_is_rocketmqs_epoch_entry_cache() -> None:
    body = encode_epoch_cache("C", "g", 0, [E(1, 0), E(3, 500)], 900)
    obj = json.loads(body)
    assert obj == {
        "brokerId": 0,
        "brokerName": "g",
        "clusterName": "C",
        "epochList": [
            {"epoch": 1, "startOffset": 0, "endOffset": 500},
            {"epoch": 3, "startOffset": 500, "endOffset": 2**63 - 1},
        ],
        "maxOffset": 900,
    }
    assert decode_epoch_cache(body) == ([E(1, 0), E(3, 500)], 900)
    for bad in (
        b"",
        b"{}",
        b'{"epochList": [{"epoch": 2, "startOffset": 0}, {"epoch": 1, "startOffset": 5}], "maxOffset": 1}',
        b'{"epochList": "x", "maxOffset": 1}',
    ):
        with pytest.raises(ValueError):
            decode_epoch_cache(bad)


# ---- the master side: Broker.become_master ---------------------------------------------------------


def _controller_broker(root: Path) -> Broker:
    return Broker(
        BrokerConfig(
            listen_port=0,
            listen_host="127.0.0.1",
            store_path_root_dir=root,
            enable_controller_mode=True,
            controller_addr="127.0.0.1:1",  # nobody: the test plays the controller
            brokerId=1,
        )
    )


def test_become_master_records_its_epoch_durably_and_refuses_an_older_one(tmp_path: Path) -> None:
    async def first() -> int:
        broker = _controller_broker(tmp_path / "b")
        await broker.start()
        try:
            await broker.become_master(2)
            assert broker.epochs.entries == [E(2, 0)]
            assert broker.topics.data_version.state_version == 2
            for i in range(3):
                put(broker.store, T, 0, f"m{i}".encode())
            broker.topics.create_if_absent("Other", 2)  # a topic change keeps the state version
            assert broker.topics.data_version.state_version == 2
            with pytest.raises(EpochRefused):
                await broker.become_master(1)
            await broker.become_master(2)  # the same epoch again (a repeated answer): no new entry
            assert broker.epochs.entries == [E(2, 0)]
            return broker.store.commit_log_max_offset
        finally:
            await broker.stop()

    async def again(end: int) -> None:
        broker = _controller_broker(tmp_path / "b")
        assert broker.epochs.entries == [E(2, 0)]  # loaded with the store
        await broker.start()
        try:
            with pytest.raises(EpochRefused):
                await broker.become_master(1)
            assert not broker.store.writable or broker.store.replica_only  # still fenced
            await broker.become_master(3)
            assert broker.epochs.entries == [E(2, 0), E(3, end)]
            assert broker.topics.data_version.state_version == 3
        finally:
            await broker.stop()

    end = asyncio.run(first())
    asyncio.run(again(end))
