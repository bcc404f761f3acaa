"""Retention: clean_expired deletes commit-log segments older than fileReservedTime.

Segment ages are set with os.utime (no waiting); clean_expired(force=True) runs the deletion as
the deleteWhen hour or a full disk would.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from ferrymq.core.remoting.message import decode_stored_message
from ferrymq.core.store import GetStatus, MessageStore, PutResult
from tests.test_store_support import CQ_FILE, SEGMENT, abandon, open_store, opened_store, put, read_all

TOPIC = "RetainTopic"
OLD = "OldTopic"  # written only into the first segment
HOURS = 3600


def _segments(root: Path) -> list[Path]:
    return sorted((root / "commitlog").iterdir())


def _age(paths: list[Path], hours: float) -> None:
    t = time.time() - hours * HOURS
    for p in paths:
        os.utime(p, (t, t))


def _fill(store: MessageStore, segments: int) -> dict[int, list[PutResult]]:
    """OLD gets 20 messages first, then TOPIC's 3 queues until ``segments`` segments exist."""
    out: dict[int, list[PutResult]] = {0: [], 1: [], 2: []}
    for i in range(20):
        put(store, OLD, 0, f"old-{i}".encode(), keys=[f"old-{i}"])
    i = 0
    while len(_segments(store.root)) < segments or store.commit_log.write_offset % SEGMENT < 12000:
        q = i % 3
        out[q].append(put(store, TOPIC, q, f"m-{i}-".encode() + b"x" * 900, keys=[f"k{i}"]))
        i += 1
    return out


def test_clean_expired_deletes_old_segments_but_never_the_active_one(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with opened_store(root, maxIndexNum=40) as s:
        puts = _fill(s, 5)
        segs = _segments(root)
        assert len(segs) == 5
        _age(segs, 100)  # every segment is past fileReservedTime=72h, the active one included
        n_index_before = len(list((root / "index").iterdir()))

        assert s.clean_expired(force=True) == 4
        assert _segments(root) == [segs[-1]]  # only the segment being written is left
        min_phys = 4 * SEGMENT
        assert s.commit_log.min_offset == min_phys
        assert s.clean_expired(force=True) == 0  # never the active one, however old

        for q, results in puts.items():
            kept = [r for r in results if r.phys_offset >= min_phys]
            first_kept = results.index(kept[0])
            assert s.min_offset(TOPIC, q) == first_kept
            assert s.max_offset(TOPIC, q) == len(results)
            # below the min: OFFSET_TOO_SMALL, and the consumer is sent to the min
            for offset in (0, first_kept - 1):
                res = s.get_messages(TOPIC, q, offset, 32)
                assert res.status == GetStatus.OFFSET_TOO_SMALL
                assert res.next_begin_offset == first_kept
                assert res.min_offset == first_kept
            msgs = read_all(s, TOPIC, q, first_kept)
            assert [m.commit_log_offset for m in msgs] == [r.phys_offset for r in kept]
            assert msgs[0].queue_offset == first_kept
            # what is gone is gone everywhere
            gone = results[first_kept - 1]
            assert s.look_message(gone.phys_offset) is None
            assert s.queue_store_timestamp(TOPIC, q, first_kept - 1) is None
            assert s.offset_by_time(TOPIC, q, 0) == first_kept

        # consume-queue files wholly below the min are deleted from disk
        for q in range(3):
            files = sorted((root / "consumequeue" / TOPIC / str(q)).iterdir())
            assert (
                int(files[0].name) // 20 <= s.min_offset(TOPIC, q) < int(files[0].name) // 20 + CQ_FILE // 20
            )
        # index files that only point at deleted segments are deleted too
        assert len(list((root / "index").iterdir())) < n_index_before
        assert s.query_by_key(OLD, "old-3", 10, 0, 2**62) == []
        assert s.query_by_key(TOPIC, "k0", 10, 0, 2**62) == []
        last = puts[0][-1]
        k = int(decode_stored_message(s.look_message(last.phys_offset) or b"").body.split(b"-")[1])
        assert len(s.query_by_key(TOPIC, f"k{k}", 10, 0, 2**62)) == 1

        # writes go on at the next queue offsets
        assert put(s, TOPIC, 1, b"new").queue_offset == len(puts[1])


def test_queue_emptied_by_retention_keeps_its_offsets(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with opened_store(root) as s:
        _fill(s, 3)
        _age(_segments(root), 100)
        assert s.clean_expired(force=True) == 2
        # OLD's 20 messages were all in the first segment
        assert (s.min_offset(OLD, 0), s.max_offset(OLD, 0)) == (20, 20)
        res = s.get_messages(OLD, 0, 0, 32)
        assert (res.status, res.next_begin_offset) == (GetStatus.OFFSET_TOO_SMALL, 20)
        # a consumer that had read everything is simply caught up, as before retention
        res = s.get_messages(OLD, 0, 20, 32)
        assert (res.status, res.next_begin_offset) == (GetStatus.OFFSET_OVERFLOW_ONE, 20)
        res = s.get_messages(OLD, 0, 25, 32)
        assert res.status == GetStatus.OFFSET_OVERFLOW_BADLY
        assert res.next_begin_offset == 20  # min offset above 0: corrected to the max
        assert put(s, OLD, 0, b"new").queue_offset == 20
        res = s.get_messages(OLD, 0, 20, 32)
        assert res.status == GetStatus.FOUND and res.next_begin_offset == 21


def test_only_segments_past_the_reserved_time_go(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with opened_store(root, fileReservedTime=48) as s:
        _fill(s, 5)
        segs = _segments(root)
        _age(segs[:2], 49)
        _age(segs[2:4], 47)
        assert s.clean_expired(force=True) == 2
        assert _segments(root) == segs[2:]
        # deletion is in order: an old segment after a young one waits for it
        _age(segs[3:4], 100)
        assert s.clean_expired(force=True) == 0
        assert s.commit_log.min_offset == 2 * SEGMENT
        # the time can be given explicitly too
        assert s.clean_expired(now=time.time() + 2 * HOURS, force=True) == 2
        assert _segments(root) == segs[4:]


def test_nothing_expired_nothing_deleted(tmp_path: Path) -> None:
    root = tmp_path / "store"
    with opened_store(root) as s:
        puts = _fill(s, 3)
        assert s.clean_expired(force=True) == 0
        assert len(_segments(root)) == 3
        assert len(read_all(s, TOPIC, 0)) == len(puts[0])


def test_min_offsets_survive_restart_and_crash_after_retention(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    puts = _fill(s, 4)
    _age(_segments(root), 100)
    assert s.clean_expired(force=True) == 3
    mins = {q: s.min_offset(TOPIC, q) for q in range(3)}
    assert all(m > 0 for m in mins.values())
    s.close()

    s = open_store(root)
    assert {q: s.min_offset(TOPIC, q) for q in range(3)} == mins
    assert (s.min_offset(OLD, 0), s.max_offset(OLD, 0)) == (20, 20)
    put(s, TOPIC, 0, b"after")
    abandon(s)  # crash after retention

    with opened_store(root) as s:
        assert s.recovered_crash
        assert {q: s.min_offset(TOPIC, q) for q in range(3)} == mins
        assert s.max_offset(TOPIC, 0) == len(puts[0]) + 1
        assert (s.min_offset(OLD, 0), s.max_offset(OLD, 0)) == (20, 20)
        for q in range(3):
            msgs = read_all(s, TOPIC, q, mins[q])
            assert [m.queue_offset for m in msgs] == list(range(mins[q], s.max_offset(TOPIC, q)))
        res = s.get_messages(TOPIC, 1, 0, 32)
        assert (res.status, res.next_begin_offset) == (GetStatus.OFFSET_TOO_SMALL, mins[1])
