"""The in-process MessageStore: puts and gets, filters, pull-offset semantics, segments, restart,
key index, time search, look-ups by offset and batch entries.

Crash recovery is in test_store_recovery.py, retention in test_store_retention.py. Files are
small (64 KiB commit-log segments, 50-unit consume-queue files) so that roll-over happens.
"""

from __future__ import annotations

import itertools
import random
import struct
import time
from pathlib import Path

import pytest

from ferrymq.core.remoting.message import (
    BLANK_MAGIC,
    MAGIC_V1,
    MessageExt,
    decode_stored_message,
    decode_stored_messages,
    java_string_hash,
)
from ferrymq.core.store import GetStatus, MessageStore, PutStatus, fileio
from ferrymq.core.store.entry import BATCH_FORMAT_KAFKA_V2
from ferrymq.core.store.message_store import StoreError
from tests.test_store_support import SEGMENT, STORE_IP, STORE_PORT, abandon, open_store, put, read_all

TOPIC = "StoreTopic"


@pytest.fixture
def store(tmp_path: Path):
    s = open_store(tmp_path / "store")
    yield s
    if s.commit_log.files.files:  # not closed by the test
        s.close()


# ---- put / get -------------------------------------------------------------------------------


def test_put_then_get(store: MessageStore) -> None:
    results = [put(store, TOPIC, 0, f"body-{i}".encode(), tags="TagA", keys=[f"k{i}"]) for i in range(10)]
    assert [r.queue_offset for r in results] == list(range(10))
    assert results[0].phys_offset == 0
    for a, b in itertools.pairwise(results):
        assert b.phys_offset == a.phys_offset + a.size  # contiguous in the commit log
    res = store.get_messages(TOPIC, 0, 0, 32)
    assert res.status == GetStatus.FOUND
    assert res.message_count == 10
    assert res.next_begin_offset == 10
    assert (res.min_offset, res.max_offset) == (0, 10)
    msgs = decode_stored_messages(b"".join(res.buffers))
    assert res.byte_count == sum(m.store_size for m in msgs)
    for i, (m, r) in enumerate(zip(msgs, results, strict=True)):
        assert m.body == f"body-{i}".encode()
        assert m.topic == TOPIC
        assert m.queue_id == 0
        assert m.queue_offset == i
        assert m.commit_log_offset == r.phys_offset
        assert m.store_size == r.size
        assert m.store_host == f"{STORE_IP}:{STORE_PORT}"
        assert m.born_timestamp == 1_700_000_000_000
        assert m.born_host == "127.0.0.1:40000"
        assert m.tags == "TagA"
        assert m.keys == f"k{i}"
        assert m.store_timestamp == r.store_timestamp
    assert store.max_offset(TOPIC, 0) == 10
    assert store.min_offset(TOPIC, 0) == 0


def test_get_respects_max_nums_and_max_bytes(store: MessageStore) -> None:
    sizes = [put(store, TOPIC, 1, b"x" * 100).size for _ in range(10)]
    res = store.get_messages(TOPIC, 1, 0, 3)
    assert (res.status, res.message_count, res.next_begin_offset) == (GetStatus.FOUND, 3, 3)
    res = store.get_messages(TOPIC, 1, 3, 32, max_bytes=sizes[0] * 2)
    assert res.message_count == 2 and res.next_begin_offset == 5
    res = store.get_messages(TOPIC, 1, 8, 32)
    assert res.message_count == 2 and res.next_begin_offset == 10


def test_queues_and_topics_are_independent(store: MessageStore) -> None:
    for i in range(6):
        put(store, TOPIC, i % 3, f"q{i % 3}-{i}".encode())
        put(store, "Other", 0, f"o-{i}".encode())
    assert [m.body for m in read_all(store, TOPIC, 0)] == [b"q0-0", b"q0-3"]
    assert [m.body for m in read_all(store, TOPIC, 2)] == [b"q2-2", b"q2-5"]
    assert [m.queue_offset for m in read_all(store, "Other", 0)] == list(range(6))
    assert store.topics_in_store() == {TOPIC, "Other"}


def test_tag_filter_by_hash(store: MessageStore) -> None:
    tags = ["TagA", "TagB", None, "TagA", "TagC", "TagB", "TagA"]
    for i, t in enumerate(tags):
        put(store, TOPIC, 0, f"m{i}".encode(), tags=t)
    code_a = java_string_hash("TagA")
    res = store.get_messages(TOPIC, 0, 0, 32, tag_codes={code_a})
    msgs = decode_stored_messages(b"".join(res.buffers))
    assert [m.body for m in msgs] == [b"m0", b"m3", b"m6"]
    assert res.next_begin_offset == 7
    # "TagA || TagB" as a consumer's codeSet
    res = store.get_messages(TOPIC, 0, 0, 32, tag_codes={code_a, java_string_hash("TagB")})
    assert [m.body for m in decode_stored_messages(b"".join(res.buffers))] == [
        b"m0",
        b"m1",
        b"m3",
        b"m5",
        b"m6",
    ]
    # max_nums stops the scan right after the last match
    res = store.get_messages(TOPIC, 0, 0, 2, tag_codes={code_a})
    assert res.message_count == 2 and res.next_begin_offset == 4
    # nothing matches: NO_MATCHED_MESSAGE, and the scan moved past what it looked at
    res = store.get_messages(TOPIC, 0, 0, 32, tag_codes={java_string_hash("TagZ")})
    assert res.status == GetStatus.NO_MATCHED_MESSAGE
    assert res.buffers == [] and res.message_count == 0
    assert res.next_begin_offset == 7
    # below max_nums the scan goes on to the end (Java: nextBeginOffset = offset + units scanned)
    res = store.get_messages(TOPIC, 0, 4, 32, tag_codes={java_string_hash("TagC")})
    assert res.status == GetStatus.FOUND and res.message_count == 1 and res.next_begin_offset == 7


def test_tag_filter_scan_is_bounded_by_max_filter_message_count(tmp_path: Path) -> None:
    s = open_store(tmp_path / "s", maxFilterMessageCount=10)
    try:
        for i in range(30):
            put(s, TOPIC, 0, f"m{i}".encode(), tags="TagB" if i < 25 else "TagA")
        res = s.get_messages(TOPIC, 0, 0, 5, tag_codes={java_string_hash("TagA")})
        assert res.status == GetStatus.NO_MATCHED_MESSAGE
        assert 0 < res.next_begin_offset <= 25  # progress, and nothing skipped that matched
        offset, found = 0, []
        while offset < 30:
            res = s.get_messages(s_topic := TOPIC, 0, offset, 5, tag_codes={java_string_hash("TagA")})
            found += [m.body for m in decode_stored_messages(b"".join(res.buffers))]
            assert res.next_begin_offset > offset, s_topic
            offset = res.next_begin_offset
        assert found == [f"m{i}".encode() for i in range(25, 30)]
    finally:
        s.close()


# ---- next_begin_offset for every status (DefaultMessageStore.getMessage) -----------------------


def test_status_no_matched_logic_queue(store: MessageStore) -> None:
    res = store.get_messages("Unknown", 0, 5, 32)
    assert res.status == GetStatus.NO_MATCHED_LOGIC_QUEUE
    assert res.next_begin_offset == 0
    assert store.max_offset("Unknown", 0) == 0


def test_status_no_message_in_queue(store: MessageStore) -> None:
    store.consume_queue(TOPIC, 3)  # the queue exists, nothing was ever written to it
    for offset in (0, 5):
        res = store.get_messages(TOPIC, 3, offset, 32)
        assert res.status == GetStatus.NO_MESSAGE_IN_QUEUE
        assert res.next_begin_offset == 0
        assert (res.min_offset, res.max_offset) == (0, 0)


def test_status_overflow_one_and_badly(store: MessageStore) -> None:
    for i in range(5):
        put(store, TOPIC, 0, f"m{i}".encode())
    res = store.get_messages(TOPIC, 0, 5, 32)
    assert res.status == GetStatus.OFFSET_OVERFLOW_ONE
    assert res.next_begin_offset == 5
    assert res.buffers == []
    res = store.get_messages(TOPIC, 0, 500, 32)
    assert res.status == GetStatus.OFFSET_OVERFLOW_BADLY
    # min offset 0: corrected to the min (Java: minOffset == 0 ? min : max)
    assert res.next_begin_offset == 0
    assert (res.min_offset, res.max_offset) == (0, 5)


# (OFFSET_TOO_SMALL and OVERFLOW_BADLY with a min offset above 0 need retention: see
# test_store_retention.py)


# ---- commit-log segments ---------------------------------------------------------------------


def _segments(store: MessageStore) -> list[Path]:
    return sorted((store.root / "commitlog").iterdir())


def test_segment_rollover_blank_filler_and_contiguous_offsets(store: MessageStore) -> None:
    rng = random.Random(7)
    bodies = [rng.randbytes(rng.randint(200, 3000)) for _ in range(150)]
    results = [put(store, TOPIC, i % 2, b) for i, b in enumerate(bodies)]
    segs = _segments(store)
    assert len(segs) >= 4
    assert [p.name for p in segs] == [f"{i * SEGMENT:020d}" for i in range(len(segs))]
    assert all(p.stat().st_size == SEGMENT for p in segs)
    # every record either follows the previous one or starts the next segment after a BLANK
    expected = 0
    rolled = 0
    for r in results:
        if r.phys_offset != expected:
            assert r.phys_offset % SEGMENT == 0 and r.phys_offset > expected, (r, expected)
            seg = segs[expected // SEGMENT].read_bytes()
            pos = expected % SEGMENT
            size, magic = struct.unpack_from(">ii", seg, pos)
            assert magic == BLANK_MAGIC
            assert size == SEGMENT - pos  # the filler covers the rest of the segment
            rolled += 1
        assert r.phys_offset // SEGMENT == (r.phys_offset + r.size - 1) // SEGMENT  # never spans
        expected = r.phys_offset + r.size
    assert rolled == len(segs) - 1
    # the messages next to each boundary read back (raw file bytes, then through get_messages)
    for r in results:
        seg = segs[r.phys_offset // SEGMENT].read_bytes()
        m = decode_stored_message(seg, r.phys_offset % SEGMENT)
        assert m.commit_log_offset == r.phys_offset
    got = read_all(store, TOPIC, 0) + read_all(store, TOPIC, 1)
    assert sorted(m.body for m in got) == sorted(bodies)
    for q in (0, 1):
        assert [m.queue_offset for m in read_all(store, TOPIC, q)] == list(range(75))
    # one get spanning a segment boundary returns both sides
    res = store.get_messages(TOPIC, 0, 0, 75)
    assert res.message_count == 75
    assert [m.body for m in decode_stored_messages(b"".join(res.buffers))] == bodies[0::2]


def test_message_larger_than_a_segment_is_refused_not_stored(store: MessageStore) -> None:
    put(store, TOPIC, 0, b"small")
    with pytest.raises(StoreError):
        store.put_message(TOPIC, 0, b"x" * SEGMENT, "")
    assert store.max_offset(TOPIC, 0) == 1
    assert put(store, TOPIC, 0, b"after").queue_offset == 1
    assert [m.body for m in read_all(store, TOPIC, 0)] == [b"small", b"after"]


def test_properties_over_32767_bytes_are_refused(store: MessageStore) -> None:
    with pytest.raises(StoreError):
        store.put_message(TOPIC, 0, b"x", "K\x01" + "v" * 40000 + "\x02")
    assert store.max_offset(TOPIC, 0) == 0


# ---- clean restart ---------------------------------------------------------------------------


def test_clean_restart_keeps_everything(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    rng = random.Random(1)
    bodies = {q: [rng.randbytes(rng.randint(10, 2500)) for _ in range(60)] for q in range(3)}
    for i in range(60):
        for q in range(3):
            put(s, TOPIC, q, bodies[q][i], tags=f"T{q}", keys=[f"key-{q}-{i}"], uniq=f"U{q:02d}{i:04d}")
    end = s.commit_log.write_offset
    s.close()
    assert not (root / "abort").exists()

    s = open_store(root)
    try:
        assert not s.recovered_crash
        assert s.commit_log.write_offset == end
        for q in range(3):
            assert s.max_offset(TOPIC, q) == 60
            msgs = read_all(s, TOPIC, q)
            assert [m.body for m in msgs] == bodies[q]
            assert [m.queue_offset for m in msgs] == list(range(60))
        # writes continue where they stopped
        r = put(s, TOPIC, 1, b"after restart")
        assert r.queue_offset == 60
        assert r.phys_offset >= end and (r.phys_offset == end or r.phys_offset % SEGMENT == 0)
        assert read_all(s, TOPIC, 1, 60)[0].body == b"after restart"
        # the key index survived too
        found = s.query_by_key(TOPIC, "key-2-33", 10, 0, _now_ms() + 60_000)
        assert [decode_stored_message(b).body for b in found] == [bodies[2][33]]
        found = s.query_by_key(TOPIC, "U010007", 10, 0, _now_ms() + 60_000, unique=True)
        assert [decode_stored_message(b).body for b in found] == [bodies[1][7]]
    finally:
        s.close()


def test_restart_twice_without_writes_is_stable(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    for i in range(5):
        put(s, TOPIC, 0, f"m{i}".encode())
    s.close()
    for _ in range(2):
        s = open_store(root)
        assert s.max_offset(TOPIC, 0) == 5
        assert len(read_all(s, TOPIC, 0)) == 5
        s.close()


# ---- key index -------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _bodies(found: list[bytes]) -> list[bytes]:
    return [decode_stored_message(b).body for b in found]


def test_query_by_key_and_unique_key(store: MessageStore) -> None:
    start = _now_ms() - 1000
    put(store, TOPIC, 0, b"a", keys=["order-1", "customer-9"], uniq="UNIQ-A")
    put(store, TOPIC, 1, b"b", keys=["order-2"], uniq="UNIQ-B")
    put(store, TOPIC, 2, b"c", keys=["order-1"], uniq="UNIQ-C")
    put(store, "Other", 0, b"other", keys=["order-1"], uniq="UNIQ-A")
    end = _now_ms() + 1000
    assert sorted(_bodies(store.query_by_key(TOPIC, "order-1", 10, start, end))) == [b"a", b"c"]
    assert _bodies(store.query_by_key(TOPIC, "customer-9", 10, start, end)) == [b"a"]
    assert _bodies(store.query_by_key(TOPIC, "order-2", 10, start, end)) == [b"b"]
    assert _bodies(store.query_by_key("Other", "order-1", 10, start, end)) == [b"other"]
    assert store.query_by_key(TOPIC, "nope", 10, start, end) == []
    # max_num caps the answer
    assert len(store.query_by_key(TOPIC, "order-1", 1, start, end)) == 1
    # unique-key queries match UNIQ_KEY only, never KEYS, and the other way round
    assert _bodies(store.query_by_key(TOPIC, "UNIQ-B", 10, start, end, unique=True)) == [b"b"]
    assert store.query_by_key(TOPIC, "UNIQ-B", 10, start, end) == []
    assert store.query_by_key(TOPIC, "order-2", 10, start, end, unique=True) == []
    # a time range before the messages finds nothing
    assert store.query_by_key(TOPIC, "order-1", 10, start - 3_600_000, start - 1_800_000) == []


def test_query_by_key_with_many_index_files(tmp_path: Path) -> None:
    # 10 entries per index file: a stream of keyed messages fills many files within one millisecond
    s = open_store(tmp_path / "s", maxIndexNum=10, maxHashSlotNum=4)
    try:
        for i in range(60):
            put(s, TOPIC, i % 4, f"m{i}".encode(), keys=[f"k{i}"], uniq=f"u{i}")
        end = _now_ms() + 1000
        for i in range(60):
            assert _bodies(s.query_by_key(TOPIC, f"k{i}", 5, 0, end)) == [f"m{i}".encode()], i
            assert _bodies(s.query_by_key(TOPIC, f"u{i}", 5, 0, end, unique=True)) == [f"m{i}".encode()], i
        s.close()
        s = open_store(tmp_path / "s", maxIndexNum=10, maxHashSlotNum=4)
        for i in range(0, 60, 7):
            assert _bodies(s.query_by_key(TOPIC, f"k{i}", 5, 0, end)) == [f"m{i}".encode()], i
    finally:
        s.close()


def test_query_by_key_hash_collisions_are_filtered(tmp_path: Path) -> None:
    s = open_store(tmp_path / "s", maxHashSlotNum=1)  # every key in one slot chain
    try:
        for i in range(20):
            put(s, TOPIC, 0, f"m{i}".encode(), keys=[f"key{i}"])
        end = _now_ms() + 1000
        assert _bodies(s.query_by_key(TOPIC, "key13", 5, 0, end)) == [b"m13"]
        assert s.query_by_key(TOPIC, "key99", 5, 0, end) == []
    finally:
        s.close()


# ---- offset by time --------------------------------------------------------------------------


def test_offset_by_time(store: MessageStore) -> None:
    results = [put(store, TOPIC, 0, f"m{i}".encode()) for i in range(40)]
    stamps = [r.store_timestamp for r in results]
    assert stamps == sorted(stamps)
    for ts in sorted(set(stamps)):
        expected = next(i for i, t in enumerate(stamps) if t >= ts)
        assert store.offset_by_time(TOPIC, 0, ts) == expected
    assert store.offset_by_time(TOPIC, 0, 0) == 0
    assert store.offset_by_time(TOPIC, 0, stamps[0] - 1) == 0
    assert store.offset_by_time(TOPIC, 0, stamps[-1] + 1) == 40  # after everything: the max offset
    assert store.offset_by_time("Unknown", 0, stamps[0]) == 0
    assert store.queue_store_timestamp(TOPIC, 0, 0) == stamps[0]
    assert store.queue_store_timestamp(TOPIC, 0, 40) is None


# ---- look-up by commit-log offset (VIEW_MESSAGE_BY_ID) -----------------------------------------


def test_look_message_valid_and_bogus_offsets(store: MessageStore) -> None:
    rng = random.Random(3)
    results = [put(store, TOPIC, 0, rng.randbytes(rng.randint(500, 3000))) for _ in range(60)]
    assert len(_segments(store)) >= 2
    for r in results:
        data = store.look_message(r.phys_offset)
        assert data is not None and len(data) == r.size
        m = decode_stored_message(data)
        assert m.commit_log_offset == r.phys_offset
    end = store.commit_log.write_offset
    blank_at = next(
        r.phys_offset + r.size for r, n in itertools.pairwise(results) if n.phys_offset % SEGMENT == 0
    )
    bogus = [
        -1,
        -(2**63),
        results[3].phys_offset + 1,  # inside a record
        results[3].phys_offset + 4,  # at a record's MAGICCODE
        results[3].phys_offset - 1,
        blank_at,  # the BLANK filler at a segment's end
        SEGMENT - 4,
        end,
        end + 1,
        10 * SEGMENT,
        2**62,
    ]
    for off in bogus:
        assert store.look_message(off) is None, off


def test_look_message_refuses_a_record_with_a_bad_crc(store: MessageStore) -> None:
    r = put(store, TOPIC, 0, b"payload that will be damaged")
    put(store, TOPIC, 0, b"next")
    f = store.commit_log.files.file_for(r.phys_offset)
    assert f is not None
    body_pos = r.phys_offset + r.size - 2 - 1 - len(TOPIC) - 5  # inside the body
    f.view[body_pos] ^= 0xFF
    assert store.look_message(r.phys_offset) is None


# ---- batch entries (put_batch_entry) ---------------------------------------------------------


def test_put_batch_entry(store: MessageStore) -> None:
    put(store, TOPIC, 0, b"before")
    payload = b"kafka-record-batch" * 10
    res = store.put_batch_entry(TOPIC, 0, 5, BATCH_FORMAT_KAFKA_V2, payload)
    assert res.status == PutStatus.OK
    assert res.queue_offset == 1 and res.count == 5
    assert store.max_offset(TOPIC, 0) == 6
    after = put(store, TOPIC, 0, b"after")
    assert after.queue_offset == 6
    cq = store.consume_queue(TOPIC, 0)
    units = [cq.unit(i) for i in range(7)]
    assert all(u is not None for u in units)
    assert {u[0] for u in units[1:6] if u} == {res.phys_offset}  # five units, one entry

    # the entry comes back once, and next_begin_offset skips all its messages
    got = store.get_messages(TOPIC, 0, 1, 1)
    assert got.status == GetStatus.FOUND
    assert got.message_count == 1
    assert got.next_begin_offset == 6
    entry = b"".join(got.buffers)
    assert len(entry) == res.size and entry.endswith(payload)
    assert entry == store.look_message(res.phys_offset)
    # starting in the middle of the entry returns the whole entry, then moves past it
    got = store.get_messages(TOPIC, 0, 3, 32)
    assert b"".join(got.buffers).startswith(entry)
    assert got.next_begin_offset == 7
    # a full read: message, entry, message
    got = store.get_messages(TOPIC, 0, 0, 32)
    assert got.message_count == 3 and got.next_begin_offset == 7
    data = b"".join(got.buffers)
    assert decode_stored_message(data).body == b"before"
    assert data[res.phys_offset : res.phys_offset + res.size] == entry
    assert decode_stored_message(data, after.phys_offset).body == b"after"
    # a tag filter never matches an entry (tag code 0), but scans past all its units
    got = store.get_messages(TOPIC, 0, 1, 32, tag_codes={12345})
    assert got.status == GetStatus.NO_MATCHED_MESSAGE and got.next_begin_offset == 7


def test_batch_entries_survive_restart_and_next_offsets(tmp_path: Path) -> None:
    root = tmp_path / "s"
    s = open_store(root)
    for i in range(30):  # 30 entries of 7 messages: the consume queue rolls over its 50-unit files
        r = s.put_batch_entry(TOPIC, 0, 7, BATCH_FORMAT_KAFKA_V2, f"batch-{i}".encode() * 50)
        assert r.queue_offset == i * 7
    s.close()
    s = open_store(root)
    try:
        assert s.max_offset(TOPIC, 0) == 210
        offset, seen = 0, 0
        while True:
            got = s.get_messages(TOPIC, 0, offset, 1)
            if got.status != GetStatus.FOUND:
                assert got.status == GetStatus.OFFSET_OVERFLOW_ONE
                break
            assert b"".join(got.buffers).endswith(f"batch-{seen}".encode() * 50)
            assert got.next_begin_offset == offset + 7
            offset = got.next_begin_offset
            seen += 1
        assert seen == 30
        assert s.put_batch_entry(TOPIC, 0, 3, BATCH_FORMAT_KAFKA_V2, b"p").queue_offset == 210
    finally:
        s.close()


def test_stored_records_are_v1_magic_with_the_store_host(store: MessageStore) -> None:
    r = put(store, TOPIC, 0, b"x")
    raw = bytes(store.commit_log.read(r.phys_offset, r.size))
    assert struct.unpack_from(">ii", raw) == (r.size, MAGIC_V1)
    m: MessageExt = decode_stored_message(raw)
    assert m.offset_msg_id == f"0A000005{STORE_PORT:08X}{r.phys_offset:016X}"


# ---- sparse segments -------------------------------------------------------------------------


def test_restart_does_not_write_the_rest_of_the_active_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fileio, "SPARSE", False)  # conftest.py turns preallocation off
    # segments are preallocated, not written; recovery must not fill the unwritten tail with
    # zeros (with 1 GiB segments that was a 1 GiB write and a 1 GiB buffer at every start)
    seg = 8 * 1024 * 1024
    root = tmp_path / "store"
    s = open_store(root, mappedFileSizeCommitLog=seg)
    put(s, TOPIC, 0, b"x" * 100)
    s.close()
    (path,) = (root / "commitlog").iterdir()
    assert path.stat().st_blocks * 512 >= seg, "a segment is preallocated when it is created"
    for crash in (False, True, False):
        s = open_store(root, mappedFileSizeCommitLog=seg)
        assert s.max_offset(TOPIC, 0) == 1
        assert not s.commit_log.files.files[-1]._dirty, "recovery wrote into the segment"
        if crash:
            abandon(s)
        else:
            s.close()


def test_zero_from_erases_data_written_through_the_mapping(tmp_path: Path) -> None:
    from ferrymq.core.store.mapped_file import MappedFile

    size = 4 * 1024 * 1024
    f = MappedFile(tmp_path / f"{0:020d}", size)
    try:
        f.write(0, b"keep" * 10)
        f.write(3 * 1024 * 1024 + 5, b"garbage-in-the-page-cache")  # never flushed
        f.write(size - 3, b"end")
        f.zero_from(40)
        assert bytes(f.view[:40]) == b"keep" * 10
        assert bytes(f.view[40:]) == bytes(size - 40)
    finally:
        f.close()
    with open(tmp_path / f"{0:020d}", "rb") as fh:
        data = fh.read()
    assert data[:40] == b"keep" * 10 and data[40:] == bytes(size - 40)
