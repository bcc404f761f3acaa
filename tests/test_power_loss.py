"""Power loss, simulated: the page cache is dropped, not kept as kill -9 keeps it.

The store runs over the recording file layer (fault_fs.py): every fdatasync/fsync records the
file's bytes, every directory fsync its entries. At the cut, the store is abandoned mid-stream
and the tree is rewritten to exactly what was synced — unsynced bytes, files whose names were
never synced, renames without a directory sync are gone. Under SYNC_FLUSH nothing acknowledged
may be lost after recovery; under ASYNC_FLUSH the same cut loses what was not flushed yet, which
shows the simulation can see a missing sync.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ferrymq.core.remoting.message import PROPERTY_UNIQ_KEY, properties_to_string
from ferrymq.core.store import MessageStore, PutStatus
from tests.fault_fs import FaultyDisk
from tests.test_store_support import abandon, open_store, read_all

T = "PowerTopic"
QUEUES = 4


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FaultyDisk:
    return FaultyDisk().install(monkeypatch)


async def _produce(store: MessageStore, wait: bool, target: int) -> tuple[set[str], int]:
    """8 producers until ``target`` puts are acknowledged, then a few unacknowledged ones (in
    the page cache only at the cut); returns (acknowledged keys, puts)."""
    store.start_services()
    acked: set[str] = set()
    puts = 0
    stop = asyncio.Event()

    def put(key: str) -> int:
        nonlocal puts
        props = properties_to_string({PROPERTY_UNIQ_KEY: key})
        r = store.put_message(T, hash(key) % QUEUES, key.encode() * 10, props, uniq_key=key)
        assert r.status == PutStatus.OK
        puts += 1
        return r.end_offset

    async def producer(n: int) -> None:
        i = 0
        while not stop.is_set():
            key = f"p{n}-{i}"
            i += 1
            end = put(key)
            if wait and not await store.wait_durable(end):
                continue  # FLUSH_DISK_TIMEOUT: not acknowledged
            acked.add(key)
            if len(acked) >= target:
                stop.set()
            await asyncio.sleep(0)

    await asyncio.gather(*(producer(n) for n in range(8)))
    for i in range(20):
        put(f"unacked-{i}")
    for task in list(store._tasks):  # the cut: no shutdown, no last flush
        task.cancel()
    await asyncio.gather(*store._tasks, return_exceptions=True)
    return acked, puts


def _power_cut_and_recover(
    store: MessageStore, disk: FaultyDisk, root: Path, indexed: set[str] | None = None, **conf: object
) -> list[str]:
    """The keys the recovered store holds; with ``indexed``, each of those keys is also looked
    up in the key index (a lost index file loses the lookups of every key it held)."""
    with store._io_lock:  # a sync running in a worker thread finishes before the cut
        abandon(store)
    changed = disk.power_loss(root)
    assert changed, "the cut dropped nothing: the test would not see a missing sync"
    recovered = open_store(root, **conf)
    try:
        assert recovered.recovered_crash
        for key in sorted(indexed or ()):
            found = recovered.query_by_key(T, key, 1, 0, 2**62, unique=True)
            assert found, f"acknowledged key {key} is not in the key index after the power loss"
        return [m.properties[PROPERTY_UNIQ_KEY] for q in range(QUEUES) for m in read_all(recovered, T, q)]
    finally:
        recovered.close()


def test_power_loss_under_sync_flush_loses_nothing_acknowledged(tmp_path: Path, disk: FaultyDisk) -> None:
    root = tmp_path / "s"
    store = open_store(root, flushDiskType="SYNC_FLUSH", flushIntervalCommitLog=50)
    acked, puts = asyncio.run(_produce(store, wait=True, target=3000))
    keys = _power_cut_and_recover(store, disk, root)
    assert len(keys) == len(set(keys)), "a message came back twice"
    lost = acked - set(keys)
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:5]}"
    assert len(keys) < puts, "nothing unsynced was dropped: the cut was not a power loss"


def test_power_loss_keeps_the_key_index_of_what_was_acknowledged(tmp_path: Path, disk: FaultyDisk) -> None:
    """Small index files, so several are created while the store runs: each new file's name
    must be synced in its directory, or a power loss drops the file and every key it held."""
    root = tmp_path / "s"
    conf = {"maxIndexNum": 200, "maxHashSlotNum": 64}
    store = open_store(root, flushDiskType="SYNC_FLUSH", flushIntervalCommitLog=50, **conf)
    acked, _ = asyncio.run(_produce(store, wait=True, target=800))
    assert len(store.index.files) > 2
    _power_cut_and_recover(store, disk, root, indexed=acked, **conf)


def test_the_simulated_cut_drops_what_async_flush_had_not_synced(tmp_path: Path, disk: FaultyDisk) -> None:
    root = tmp_path / "s"
    store = open_store(root, flushDiskType="ASYNC_FLUSH", flushIntervalCommitLog=60_000)
    acked, _ = asyncio.run(_produce(store, wait=False, target=1000))
    keys = _power_cut_and_recover(store, disk, root)
    assert len(set(acked) - set(keys)) > 500  # acknowledged from the page cache, never synced
