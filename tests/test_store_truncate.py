"""MessageStore.truncate_to: a rejoining old master cuts its commit log back to the consistent
point with the new master. Everything at or after the cut is gone everywhere — commit log, consume
queues, index, checkpoint — so the next put at a queue reuses an offset only because its old
message no longer exists (reference pitfall 7), also after a restart, a kill -9 or a power loss."""

from __future__ import annotations

import asyncio
import errno
import random
from pathlib import Path

import pytest

from ferrymq.core.store import MessageStore, PutResult, StoreUnavailable
from ferrymq.core.store.entry import BATCH_FORMAT_KAFKA_V2
from tests.fault_fs import FaultyDisk
from tests.test_ha_store import queue_bytes, replicate
from tests.test_store_support import (
    SEGMENT,
    abandon,
    checkpoint,
    open_store,
    opened_store,
    put,
    read_all,
)

T = "CutTopic"
FAR_FUTURE = 2**62


def truncate(store: MessageStore, offset: int) -> None:
    asyncio.run(store.truncate_to(offset))


def _stream(store: MessageStore, n: int, start: int = 0) -> list[PutResult]:
    """n keyed messages over 3 queues, ~1 KiB each (a 64 KiB segment holds ~50)."""
    out = []
    for i in range(start, start + n):
        out.append(put(store, T, i % 3, f"m{i}-".encode() + bytes(1000), keys=[f"key-{i}"], uniq=f"U{i:06d}"))
    return out


def _bodies(store: MessageStore, q: int) -> list[bytes]:
    return [m.body[: m.body.index(b"-") + 1] for m in read_all(store, T, q)]


def _expected(n: int, q: int) -> list[bytes]:
    return [f"m{i}-".encode() for i in range(n) if i % 3 == q]


def _check_cut(store: MessageStore, cut_at: int, puts: list[PutResult], index: bool = True) -> None:
    """Messages [0, cut_at) are there, [cut_at, ...) are gone from every view (the index's
    surviving keys checked unless ``index`` is False)."""
    assert store.commit_log_max_offset == puts[cut_at].phys_offset
    for q in range(3):
        assert _bodies(store, q) == _expected(cut_at, q)
        assert store.max_offset(T, q) == len(_expected(cut_at, q))
    for i in (cut_at, cut_at + 1, len(puts) - 1):
        assert store.query_by_key(T, f"key-{i}", 10, 0, FAR_FUTURE) == []
        assert store.look_message(puts[i].phys_offset) is None
    if index:
        assert len(store.query_by_key(T, f"key-{cut_at - 1}", 10, 0, FAR_FUTURE)) == 1


def test_truncate_then_put_continues_queues_from_the_cut(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with opened_store(root) as s:
        puts = _stream(s, 150)  # three segments
        assert len(list((root / "commitlog").iterdir())) == 3
        cut: list[int] = []
        s.truncate_listeners.append(cut.append)
        truncate(s, puts[40].phys_offset)  # in the first segment
        assert cut == [puts[40].phys_offset]
        _check_cut(s, 40, puts)
        assert len(list((root / "commitlog").iterdir())) == 1  # later segments deleted
        again = _stream(s, 3, start=999)  # queues 0, 1, 2
        assert [r.queue_offset for r in again] == [14, 13, 13]  # 40 = 14 + 13 + 13 before the cut
        assert again[0].phys_offset == puts[40].phys_offset  # the same bytes again, a new message
        after = {q: [*_expected(40, q), f"m{999 + q}-".encode()] for q in range(3)}
        assert {q: _bodies(s, q) for q in range(3)} == after
    with opened_store(root) as s:  # a clean restart shows the same
        assert not s.recovered_crash
        assert {q: _bodies(s, q) for q in range(3)} == after
        assert s.query_by_key(T, "key-41", 10, 0, FAR_FUTURE) == []


def _checkpointed_store(root: Path) -> tuple[MessageStore, list[PutResult]]:
    """A store with 120 messages, all on disk and checkpointed: a recovery from that checkpoint
    would start past a cut at message 70."""
    s = open_store(root)
    puts = _stream(s, 120)
    checkpoint(s)
    return s, puts


def test_truncation_survives_a_crash_right_after(tmp_path: Path) -> None:
    root = tmp_path / "s"
    s, puts = _checkpointed_store(root)
    truncate(s, puts[70].phys_offset)
    abandon(s)  # kill -9: the abort file stays
    with opened_store(root) as s:
        assert s.recovered_crash
        _check_cut(s, 70, puts)
        assert put(s, T, 1, b"next").queue_offset == len(_expected(70, 1))


def test_truncation_survives_a_power_loss_right_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FaultyDisk().install(monkeypatch)
    root = tmp_path / "s"
    s, puts = _checkpointed_store(root)
    truncate(s, puts[70].phys_offset)
    abandon(s)
    disk.power_loss(root)  # only what was synced is left: the cut must have been
    with opened_store(root) as s:
        # the index directory is never fsynced (IndexService), so a power loss takes index files
        # that came with it: only the cut part of the index is checked here
        _check_cut(s, 70, puts, index=False)


def test_truncate_at_the_end_or_beyond_is_a_no_op_and_mid_entry_is_refused(tmp_path: Path) -> None:
    with opened_store(tmp_path / "s") as s:
        puts = _stream(s, 10)
        end = s.commit_log_max_offset
        truncate(s, end)
        truncate(s, end + 100)
        assert s.commit_log_max_offset == end and s.max_offset(T, 0) == 4
        with pytest.raises(ValueError, match="entry boundary"):
            truncate(s, puts[5].phys_offset + 1)
        with pytest.raises(ValueError):
            truncate(s, -1)
        assert s.commit_log_max_offset == end


def test_a_segment_boundary_after_a_blank_filler_is_a_cut_point(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with opened_store(root) as s:
        puts = _stream(s, 100)
        first_in_second = next(i for i, r in enumerate(puts) if r.phys_offset >= SEGMENT)
        assert puts[first_in_second].phys_offset == SEGMENT
        truncate(s, SEGMENT)
        _check_cut(s, first_in_second, puts)
        assert put(s, T, 0, b"x").phys_offset == SEGMENT


def test_batch_entries_are_cut_whole(tmp_path: Path) -> None:
    with opened_store(tmp_path / "s") as s:
        put(s, T, 0, b"a")
        b1 = s.put_batch_entry(T, 0, 5, BATCH_FORMAT_KAFKA_V2, b"x" * 100)
        b2 = s.put_batch_entry(T, 0, 4, BATCH_FORMAT_KAFKA_V2, b"y" * 100)
        assert (b1.queue_offset, b2.queue_offset, s.max_offset(T, 0)) == (1, 6, 10)
        with pytest.raises(ValueError, match="entry boundary"):
            truncate(s, b2.phys_offset + 10)
        truncate(s, b2.phys_offset)
        assert s.max_offset(T, 0) == 6
        assert [e.message_count for e in s.entries(T, 0, 0)] == [1, 5]
        b3 = s.put_batch_entry(T, 0, 3, BATCH_FORMAT_KAFKA_V2, b"z" * 100)
        assert b3.queue_offset == 6 and s.max_offset(T, 0) == 9
        assert [bytes(e.payload) for e in s.entries(T, 0, 6)] == [b"z" * 100]


def test_an_old_master_rejoins_as_a_slave_of_the_new_master(tmp_path: Path) -> None:
    """A wrote 30 messages; B had replicated 20 of them when A died and B was made master. B took
    10 new ones. A cuts back to the consistent point and replicates B: same log, same offsets."""
    rng = random.Random(9)
    a = open_store(tmp_path / "a")
    b = open_store(tmp_path / "b", brokerRole="SLAVE", brokerId=1)
    try:
        puts = _stream(a, 30)
        point = puts[20].phys_offset
        data = a.read_for_replication(0, point)
        b.append_replicated(0, data)
        assert b.replication_offset == point
        b.replica_only = False  # B is elected master
        _stream(b, 10, start=500)
        truncate(a, point)  # A rejoins: the consistent point of their epochs
        a.replica_only = True
        replicate(b, a, rng)
        assert a.commit_log_max_offset == b.commit_log_max_offset
        for q in range(3):
            assert queue_bytes(a, T, q) == queue_bytes(b, T, q)
            assert a.max_offset(T, q) == b.max_offset(T, q)
        assert a.query_by_key(T, "key-25", 10, 0, FAR_FUTURE) == []
        assert len(a.query_by_key(T, "key-505", 10, 0, FAR_FUTURE)) == 1
    finally:
        a.close()
        b.close()


def test_a_failed_sync_while_cutting_poisons_and_a_restart_recovers_the_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FaultyDisk().install(monkeypatch)
    root = tmp_path / "s"
    s, puts = _checkpointed_store(root)
    disk.fail["fdatasync"] = errno.EIO  # the zeroed tail cannot be synced
    with pytest.raises(StoreUnavailable):
        truncate(s, puts[70].phys_offset)
    disk.fail.clear()
    assert not s.writable
    abandon(s)  # the page cache holds the cut; the checkpoint must not point past it
    with opened_store(root) as s:
        assert s.recovered_crash and s.writable
        _check_cut(s, 70, puts)


def test_truncation_while_services_run_leaves_no_stray_segment(tmp_path: Path) -> None:
    """The segment prepared ahead of the old end must go: a restart would find a gap."""
    root = tmp_path / "s"
    s = open_store(root)

    async def scenario() -> list[PutResult]:
        s.start_services()
        puts = _stream(s, 120)  # rolls twice: the fourth segment is made ahead
        while s._prepare_task is not None and not s._prepare_task.done():
            await s._prepare_task
        assert len(list((root / "commitlog").iterdir())) == 4
        await s.truncate_to(puts[10].phys_offset)
        assert [p.name for p in (root / "commitlog").iterdir()] == [f"{0:020d}"]
        return puts

    puts = asyncio.run(scenario())
    abandon(s)
    with opened_store(root) as s:
        _check_cut(s, 10, puts)
        _stream(s, 60, start=2000)  # rolls into the second segment again
        assert s.max_offset(T, 0) == len(_expected(10, 0)) + 20
