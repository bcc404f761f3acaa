"""The store under disk faults, in process, through the fault-injecting file layer (fault_fs.py):
a failed sync poisons the store (never forgotten, never acknowledged), a full disk is an errno
that refuses writes and keeps reads, and writes come back once space is freed."""

from __future__ import annotations

import asyncio
import errno
import json
from pathlib import Path

import pytest

from ferrymq.core.broker.consumer_offsets import ConsumerOffsetManager
from ferrymq.core.store import MessageStore, PutStatus, StoreUnavailable
from ferrymq.core.store.mapped_file import MappedFile
from tests.fault_fs import FaultyDisk
from tests.test_store_support import SEGMENT, open_store, put, read_all

T = "FaultTopic"


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> FaultyDisk:
    return FaultyDisk().install(monkeypatch)


BODY = b"m" * 1000  # ~1.1 KiB stored: a 64 KiB segment holds ~57


def _fill_segment(store: MessageStore, start: int = 0) -> list[bytes]:
    """Put messages until the segment being written is nearly full; their bodies."""
    bodies = []
    i = start
    end = store.commit_log.write_offset - store.commit_log.write_offset % SEGMENT + SEGMENT
    while store.commit_log.write_offset < end - 2 * len(BODY):
        body = BODY + str(i).encode()
        put(store, T, 0, body)
        bodies.append(body)
        i += 1
    return bodies


# ---- a failed sync -------------------------------------------------------------------------------


def test_a_failed_fdatasync_is_never_forgotten_by_the_file(tmp_path: Path, disk: FaultyDisk) -> None:
    f = MappedFile(tmp_path / f"{0:020d}", 4096)
    f.write(0, b"data")
    disk.fail["fdatasync"] = errno.EIO
    with pytest.raises(OSError):
        f.flush()
    disk.fail.clear()
    # fsyncgate: the kernel may have dropped the pages; a second sync would "succeed" over them
    with pytest.raises(OSError, match="earlier sync"):
        f.flush()
    f.close()


def test_a_failed_sync_poisons_the_store_and_fails_sync_flush_waiters(
    tmp_path: Path, disk: FaultyDisk
) -> None:
    root = tmp_path / "s"
    store = open_store(root, flushDiskType="SYNC_FLUSH", syncFlushTimeout=3000, flushIntervalCommitLog=10)

    async def scenario() -> None:
        store.start_services()
        a = put(store, T, 0, b"a")
        assert await store.wait_durable(a.end_offset)
        b = put(store, T, 0, b"b")
        disk.fail["fdatasync"] = errno.EIO
        with pytest.raises(StoreUnavailable, match="Input/output error"):
            await store.wait_durable(b.end_offset)  # an error, never success, and no timeout wait
        disk.fail.clear()  # the device "recovers": the store must not believe it
        assert not store.writable
        assert store.unwritable_reason and "restart" in store.unwritable_reason
        refused = store.put_message(T, 0, b"c", "")
        assert refused.status == PutStatus.SERVICE_NOT_AVAILABLE
        await store.flush()
        with pytest.raises(StoreUnavailable):
            await store.wait_durable(b.end_offset)
        assert [m.body for m in read_all(store, T, 0)] == [b"a", b"b"]  # reads keep working
        await store.shutdown()

    asyncio.run(scenario())
    assert (root / "abort").exists(), "a poisoned store must not mark its shutdown clean"
    reopened = open_store(root)
    assert reopened.recovered_crash and reopened.writable
    reopened.close()


def test_a_failed_consume_queue_sync_poisons_the_store_too(tmp_path: Path, disk: FaultyDisk) -> None:
    store = open_store(tmp_path / "s")

    async def scenario() -> None:
        store.start_services()
        put(store, T, 0, b"a")
        disk.fail["fsync"] = errno.EIO  # the checkpoint after the consume queues
        await store.flush()
        assert not store.writable
        await store.shutdown()

    asyncio.run(scenario())


def test_a_failed_offset_table_write_is_retried_not_forgotten(tmp_path: Path, disk: FaultyDisk) -> None:
    path = tmp_path / "config" / "consumerOffset.json"
    offsets = ConsumerOffsetManager(path)
    offsets.commit("g", T, 0, 7)
    disk.fail["fsync"] = errno.EIO
    with pytest.raises(OSError):
        offsets.persist()
    disk.fail.clear()
    offsets.persist()  # no new commit since: the table is still dirty, so this writes it
    assert json.loads(path.read_text())["offsetTable"] == {f"{T}@g": {"0": 7}}

    async def durable() -> None:
        offsets.commit("g", T, 0, 8)
        disk.fail["fsync"] = errno.EIO
        with pytest.raises(OSError):
            await offsets.persist_durable()  # a Kafka OffsetCommit must then answer an error
        disk.fail.clear()
        await offsets.persist_durable()

    asyncio.run(durable())
    assert json.loads(path.read_text())["offsetTable"] == {f"{T}@g": {"0": 8}}


# ---- a full disk ---------------------------------------------------------------------------------


def test_segments_are_preallocated_the_next_one_off_the_loop(tmp_path: Path, disk: FaultyDisk) -> None:
    store = open_store(tmp_path / "s")

    async def scenario() -> None:
        store.start_services()
        put(store, T, 0, b"first")  # the first segment and queue file: allocated inline
        disk.fallocations.clear()
        while len(store.commit_log.files.files) < 4:
            _fill_segment(store)
            put(store, T, 0, BODY)  # a roll takes the segment made ahead and begins the next
            while store._preparing:
                await asyncio.sleep(0.01)
        await store.shutdown()

    asyncio.run(scenario())
    segments = [thread for path, thread in disk.fallocations if "/commitlog/" in path]
    assert len(segments) >= 3, disk.fallocations
    assert "MainThread" not in segments, "a commit-log segment was allocated on the event loop"
    assert all(p.stat().st_blocks * 512 >= SEGMENT for p in (tmp_path / "s" / "commitlog").iterdir())


def test_enospc_on_a_new_segment_refuses_writes_keeps_reads_and_resumes(
    tmp_path: Path, disk: FaultyDisk
) -> None:
    root = tmp_path / "s"
    store = open_store(root)
    acked = _fill_segment(store)
    disk.fail["fallocate"] = errno.ENOSPC
    refused = None
    for i in range(100):  # the roll needs a new segment: refused, not SIGBUS
        body = BODY + f"r{i}".encode()
        result = store.put_message(T, 0, body, "")
        if result.status != PutStatus.OK:
            refused = result
            break
        acked.append(body)
    assert refused is not None and refused.status == PutStatus.SERVICE_NOT_AVAILABLE
    assert not store.writable and "No space left" in (store.unwritable_reason or "")
    assert store.put_message(T, 1, b"x", "").status == PutStatus.SERVICE_NOT_AVAILABLE
    assert [m.body for m in read_all(store, T, 0)] == acked
    asyncio.run(store.check_space())
    assert not store.writable, "still no room for the next segment"
    disk.fail.clear()  # space freed
    asyncio.run(store.check_space())
    assert store.writable and store.unwritable_reason is None
    for i in range(80):
        body = BODY + f"after{i}".encode()
        put(store, T, 0, body)
        acked.append(body)
    store.close()
    reopened = open_store(root)
    msgs = read_all(reopened, T, 0)
    assert [m.body for m in msgs] == acked
    assert [m.queue_offset for m in msgs] == list(range(len(acked)))
    reopened.close()


def test_enospc_on_a_new_consume_queue_file_stores_nothing(tmp_path: Path, disk: FaultyDisk) -> None:
    store = open_store(tmp_path / "s")
    put(store, T, 0, b"a")
    end = store.commit_log.write_offset
    disk.fail["fallocate"] = errno.ENOSPC
    assert store.put_message(T, 5, b"b", "").status == PutStatus.SERVICE_NOT_AVAILABLE
    assert store.commit_log.write_offset == end, "the entry must not be in the log without its unit"
    disk.fail.clear()
    asyncio.run(store.check_space())
    put(store, T, 5, b"b")
    assert store.queue_bounds(T, 5) == (0, 1)
    store.close()


def test_a_disk_over_the_ratios_forces_retention_and_refuses_writes(tmp_path: Path, disk: FaultyDisk) -> None:
    store = open_store(tmp_path / "s")
    while len(store.commit_log.files.files) < 5:
        _fill_segment(store)
        put(store, T, 0, BODY)
    segments = len(store.commit_log.files.files)
    total = 100 * SEGMENT
    disk.usage = lambda: (total, (len(store.commit_log.files.files) + 88) * SEGMENT)  # 92-93 %
    asyncio.run(store.check_space())
    assert not store.writable and "diskSpaceWarningLevelRatio=90" in (store.unwritable_reason or "")
    # young segments (fileReservedTime=72 h) go early while the disk is over 85 %
    assert store.clean_expired() == segments - 1  # all but the active one: still over 85 %
    assert store.commit_log.min_offset > 0
    asyncio.run(store.check_space())
    assert store.writable
    put(store, T, 0, b"after")
    store.close()


def test_a_full_disk_when_the_checkpoint_is_written_is_disk_full_not_poison(
    tmp_path: Path, disk: FaultyDisk
) -> None:
    """ENOSPC writing the checkpoint's bytes is a full disk (writes refused until space returns),
    not a failed sync: nothing synced was lost, so the store must not be poisoned for good."""
    store = open_store(tmp_path / "s")
    put(store, T, 0, b"a")
    disk.fail["write"] = errno.ENOSPC

    async def flush() -> None:
        store._flush_lock = asyncio.Lock()
        await store.flush()

    asyncio.run(flush())
    assert not store.writable and "disk full" in (store.unwritable_reason or ""), store.unwritable_reason
    disk.fail.clear()
    asyncio.run(store.check_space())
    assert store.writable, store.unwritable_reason
    put(store, T, 0, b"b")
    asyncio.run(flush())
    assert store.dispatched_durable == store.commit_log.write_offset
    store.close()
