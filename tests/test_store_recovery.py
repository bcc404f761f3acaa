"""Crash recovery of the in-process MessageStore.

A crash is simulated by abandoning a store without close(): nothing is flushed or checkpointed
and the abort file stays, which is what kill -9 leaves (the page cache keeps the mapped writes).
Torn tails are then made by writing to the files directly, as a power loss could leave them.
"""

from __future__ import annotations

import os
import random
import shutil
import struct
from pathlib import Path

from ferrymq.core.remoting.message import (
    MessageExt,
    decode_stored_message,
    encode_stored_message,
    ip_bytes,
    stored_size,
)
from ferrymq.core.store import GetStatus, MessageStore
from ferrymq.core.store.entry import BATCH_FORMAT_KAFKA_V2
from tests.test_store_support import (
    CQ_FILE,
    SEGMENT,
    STORE_IP,
    abandon,
    checkpoint,
    open_store,
    opened_store,
    put,
    read_all,
)

TOPIC = "CrashTopic"
QUEUES = 3
FAR_FUTURE = 2**62


def _write_stream(store: MessageStore, n: int, start: int = 0, seed: int = 0) -> dict[int, list[bytes]]:
    """n keyed messages spread over QUEUES queues; returns the bodies per queue in order."""
    rng = random.Random(seed)
    out: dict[int, list[bytes]] = {q: [] for q in range(QUEUES)}
    for i in range(start, start + n):
        q = i % QUEUES
        body = f"msg-{i}-".encode() + rng.randbytes(rng.randint(50, 1500))
        put(store, TOPIC, q, body, tags=f"T{i % 2}", keys=[f"key-{i}"], uniq=f"UNIQ{i:08d}")
        out[q].append(body)
    return out


def _merge(a: dict[int, list[bytes]], b: dict[int, list[bytes]]) -> dict[int, list[bytes]]:
    return {q: a.get(q, []) + b.get(q, []) for q in set(a) | set(b)}


def _check_queues(store: MessageStore, expected: dict[int, list[bytes]]) -> None:
    """Every queue holds exactly the expected bodies, at dense offsets from 0."""
    for q, bodies in expected.items():
        msgs = read_all(store, TOPIC, q)
        assert [m.body for m in msgs] == bodies, f"queue {q}"
        assert [m.queue_offset for m in msgs] == list(range(len(bodies))), f"queue {q}"
        assert all(m.queue_id == q for m in msgs)
        assert store.max_offset(TOPIC, q) == len(bodies)


def _last_message(store: MessageStore) -> MessageExt:
    """The message that ends at the commit log's write offset."""
    best: MessageExt | None = None
    for q in range(QUEUES):
        msgs = read_all(store, TOPIC, q)
        if msgs and (best is None or msgs[-1].commit_log_offset > best.commit_log_offset):
            best = msgs[-1]
    assert best is not None
    return best


def _segment_path(root: Path, offset: int) -> Path:
    return root / "commitlog" / f"{offset - offset % SEGMENT:020d}"


def _write_at(root: Path, offset: int, data: bytes) -> None:
    with open(_segment_path(root, offset), "r+b") as fh:
        fh.seek(offset % SEGMENT)
        fh.write(data)


def _read_at(root: Path, offset: int, n: int) -> bytes:
    with open(_segment_path(root, offset), "rb") as fh:
        fh.seek(offset % SEGMENT)
        return fh.read(n)


def _keys_found(store: MessageStore, i: int) -> tuple[list[bytes], list[bytes]]:
    by_key = store.query_by_key(TOPIC, f"key-{i}", 10, 0, FAR_FUTURE)
    by_uniq = store.query_by_key(TOPIC, f"UNIQ{i:08d}", 10, 0, FAR_FUTURE, unique=True)
    return by_key, by_uniq


# ---- crash without damage -----------------------------------------------------------------------


def test_crash_without_checkpoint_recovers_everything(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    assert (root / "abort").exists()  # present while running
    expected = _write_stream(s, 120)
    end = s.commit_log.write_offset
    abandon(s)

    with opened_store(root) as s:
        assert s.recovered_crash
        assert s.commit_log.write_offset == end
        _check_queues(s, expected)
        # queue offsets and commit-log offsets continue after recovery
        r = put(s, TOPIC, 0, b"after")
        assert r.queue_offset == len(expected[0])
        assert r.phys_offset == end or (r.phys_offset % SEGMENT == 0 and r.phys_offset > end)
    assert not (root / "abort").exists()
    with opened_store(root) as s:
        assert not s.recovered_crash
        _check_queues(s, {**expected, 0: [*expected[0], b"after"]})


def test_crash_after_checkpoint_redispatches_the_rest_without_doubles(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    first = _write_stream(s, 90, seed=1)
    checkpoint(s)  # consume queues and index durable up to here, as the flush loop leaves them
    second = _write_stream(s, 90, start=90, seed=2)  # rolls over into further segments
    assert len(list((root / "commitlog").iterdir())) >= 3
    abandon(s)

    with opened_store(root) as s:
        assert s.recovered_crash
        expected = _merge(first, second)
        _check_queues(s, expected)
        for i in (0, 45, 89, 90, 150, 179):  # before and after the checkpoint: found once each
            by_key, by_uniq = _keys_found(s, i)
            assert len(by_key) == 1 and len(by_uniq) == 1, i
            assert by_key == by_uniq
            assert decode_stored_message(by_key[0]).body.startswith(f"msg-{i}-".encode())
        r = put(s, TOPIC, 1, b"after")
        assert r.queue_offset == len(expected[1])


def test_crash_twice_in_a_row(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 60)
    abandon(s)
    abandon(open_store(root))  # crash again right after recovery
    with opened_store(root) as s:
        assert s.recovered_crash
        _check_queues(s, expected)


def test_crash_right_after_a_segment_roll(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected: dict[int, list[bytes]] = {0: []}
    while len(list((root / "commitlog").iterdir())) < 2:
        body = os.urandom(3000)
        put(s, TOPIC, 0, body)
        expected[0].append(body)
    # the new segment holds one record; wipe it as if the crash came before that write landed
    last = expected[0].pop()
    end = s.commit_log.write_offset
    assert end % SEGMENT == stored_size(len(last), len(TOPIC), 0)
    abandon(s)
    _write_at(root, end - end % SEGMENT, bytes(SEGMENT))
    with opened_store(root) as s:
        _check_queues(s, expected)
        r = put(s, TOPIC, 0, b"x")
        assert r.queue_offset == len(expected[0])
        assert r.phys_offset == end - end % SEGMENT  # the filler stays: the next record starts the segment


# ---- torn tails ----------------------------------------------------------------------------------


def test_garbage_after_the_last_record_is_cut_off(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 40)
    end = s.commit_log.write_offset
    assert end % SEGMENT + 600 < SEGMENT
    abandon(s)
    _write_at(root, end, b"\x00\x00\x01\x00" + os.urandom(500))

    with opened_store(root) as s:
        assert s.commit_log.write_offset == end
        _check_queues(s, expected)
        assert _read_at(root, end, 504) == bytes(504)  # the garbage is erased
        r = put(s, TOPIC, 2, b"after")
        assert r.phys_offset == end
        assert r.queue_offset == len(expected[2])


def test_half_record_after_the_last_good_record_is_cut_off(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 40)
    end = s.commit_log.write_offset
    q = 1
    next_q_offset = len(expected[q])
    body = b"torn" * 200
    record = encode_stored_message(
        topic=TOPIC.encode(),
        body=body,
        properties=b"KEYS\x01torn-key\x02",
        queue_id=q,
        queue_offset=next_q_offset,
        physical_offset=end,
        born_timestamp=1,
        born_host=ip_bytes("127.0.0.1"),
        born_port=1,
        store_timestamp=2,
        store_host=ip_bytes(STORE_IP),
        store_port=10911,
    )
    # the consume queue got its unit, the commit log only half of the record
    s.consume_queue(TOPIC, q).put(next_q_offset, end, len(record), 0)
    s.index.put(TOPIC, ["torn-key"], None, end, 2)
    abandon(s)
    _write_at(root, end, record[: len(record) // 2])

    with opened_store(root) as s:
        assert s.commit_log.write_offset == end
        _check_queues(s, expected)
        assert s.get_messages(TOPIC, q, next_q_offset, 32).status == GetStatus.OFFSET_OVERFLOW_ONE
        assert s.query_by_key(TOPIC, "torn-key", 10, 0, FAR_FUTURE) == []
        r = put(s, TOPIC, q, b"replacement", keys=["new-key"])
        assert (r.phys_offset, r.queue_offset) == (end, next_q_offset)
        # the index had an entry at this offset for the torn record: the new key must still be found
        found = s.query_by_key(TOPIC, "new-key", 10, 0, FAR_FUTURE)
        assert [decode_stored_message(b).body for b in found] == [b"replacement"]
        assert s.query_by_key(TOPIC, "torn-key", 10, 0, FAR_FUTURE) == []


def test_last_record_with_a_bad_body_crc_is_cut_off(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 40)
    last = _last_message(s)
    end = s.commit_log.write_offset
    abandon(s)
    # flip one body byte: size and magic still look right, only the CRC tells
    body_pos = last.commit_log_offset + 88
    _write_at(root, body_pos, bytes([_read_at(root, body_pos, 1)[0] ^ 0x01]))

    with opened_store(root) as s:
        assert s.commit_log.write_offset == last.commit_log_offset
        assert s.commit_log.write_offset < end
        expected[last.queue_id].pop()
        _check_queues(s, expected)
        assert s.look_message(last.commit_log_offset) is None
        i = int(last.body.split(b"-")[1])
        assert _keys_found(s, i) == ([], [])
        r = put(s, TOPIC, last.queue_id, b"again", keys=[f"key-{i}"])
        assert (r.phys_offset, r.queue_offset) == (last.commit_log_offset, last.queue_offset)
        assert [decode_stored_message(b).body for b in _keys_found(s, i)[0]] == [b"again"]


def test_bad_crc_in_the_middle_truncates_exactly_there(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    all_msgs: list[tuple[int, int, bytes]] = []
    rng = random.Random(5)
    for i in range(150):
        body = rng.randbytes(rng.randint(100, 2000))
        r = put(s, TOPIC, i % QUEUES, body, keys=[f"key-{i}"])
        all_msgs.append((r.phys_offset, i % QUEUES, body))
    assert len(list((root / "commitlog").iterdir())) >= 3
    victim = 60
    bad_at = all_msgs[victim][0]
    abandon(s)
    _write_at(root, bad_at + 90, b"\xde\xad")

    with opened_store(root) as s:
        assert s.commit_log.write_offset == bad_at
        # later segments are gone, the holder is zeroed from the bad record on
        assert max(int(p.name) for p in (root / "commitlog").iterdir()) <= bad_at
        assert _read_at(root, bad_at, 64) == bytes(64)
        expected = {q: [b for _, qq, b in all_msgs[:victim] if qq == q] for q in range(QUEUES)}
        _check_queues(s, expected)
        for i in (victim, victim + 1, 149):
            assert s.query_by_key(TOPIC, f"key-{i}", 10, 0, FAR_FUTURE) == []
        assert len(s.query_by_key(TOPIC, f"key-{victim - 1}", 10, 0, FAR_FUTURE)) == 1
        q = all_msgs[victim][1]
        r = put(s, TOPIC, q, b"continues")
        assert r.phys_offset == bad_at and r.queue_offset == len(expected[q])


# ---- damaged consume queues are rebuilt from the commit log -----------------------------------


def test_deleted_consume_queue_dir_is_rebuilt_after_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    first = _write_stream(s, 150, seed=3)
    checkpoint(s)
    second = _write_stream(s, 30, start=150, seed=4)
    abandon(s)
    shutil.rmtree(root / "consumequeue" / TOPIC / "1")

    with opened_store(root) as s:
        _check_queues(s, _merge(first, second))
        assert s.min_offset(TOPIC, 1) == 0


def test_zeroed_consume_queue_tail_is_rebuilt_after_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    first = _write_stream(s, 150, seed=5)  # 50 per queue: the queue files are full
    checkpoint(s)
    second = _write_stream(s, 60, start=150, seed=6)
    abandon(s)
    files = sorted((root / "consumequeue" / TOPIC / "2").iterdir())
    assert len(files) >= 2
    # lose the last 30 units: some before the checkpoint, some after
    total_units = len(first[2]) + len(second[2])
    cut = (total_units - 30) * 20
    for f in files:
        start = int(f.name)
        if start + CQ_FILE > cut:
            with open(f, "r+b") as fh:
                pos = max(0, cut - start)
                fh.seek(pos)
                fh.write(bytes(CQ_FILE - pos))

    with opened_store(root) as s:
        _check_queues(s, _merge(first, second))
        r = put(s, TOPIC, 2, b"next")
        assert r.queue_offset == total_units


def test_deleted_consumequeue_directory_is_rebuilt_at_a_clean_restart(tmp_path: Path) -> None:
    # RocketMQ operators rebuild consume queues by deleting them and restarting the broker
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 120, seed=7)
    s.put_batch_entry("Batch", 0, 4, BATCH_FORMAT_KAFKA_V2, b"payload")
    s.close()
    shutil.rmtree(root / "consumequeue")

    with opened_store(root) as s:
        _check_queues(s, expected)
        assert s.max_offset("Batch", 0) == 4
        r = put(s, TOPIC, 0, b"next")
        assert r.queue_offset == len(expected[0])


def test_batch_entries_are_redispatched_after_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    s.put_batch_entry(TOPIC, 0, 5, BATCH_FORMAT_KAFKA_V2, b"a" * 100)
    checkpoint(s)
    s.put_batch_entry(TOPIC, 0, 3, BATCH_FORMAT_KAFKA_V2, b"b" * 100)
    put(s, TOPIC, 0, b"single")
    abandon(s)
    with opened_store(root) as s:
        assert s.max_offset(TOPIC, 0) == 9
        got = s.get_messages(TOPIC, 0, 5, 1)
        assert got.next_begin_offset == 8
        assert b"".join(got.buffers).endswith(b"b" * 100)
        got = s.get_messages(TOPIC, 0, 8, 1)
        assert decode_stored_message(b"".join(got.buffers)).body == b"single"
        assert s.put_batch_entry(TOPIC, 0, 2, BATCH_FORMAT_KAFKA_V2, b"c").queue_offset == 9


def test_checkpoint_file_garbage_falls_back_to_a_full_scan(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 50)
    abandon(s)
    (root / "checkpoint").write_bytes(b"\x00garbage{")
    with opened_store(root) as s:
        _check_queues(s, expected)


def test_commit_log_records_carry_their_own_offsets(tmp_path: Path) -> None:
    # a record copied to another offset is not a valid record there (PHYSICALOFFSET mismatch)
    root = tmp_path / "store"
    s = open_store(root)
    r = put(s, TOPIC, 0, b"original")
    end = s.commit_log.write_offset
    raw = bytes(s.commit_log.read(r.phys_offset, r.size))
    abandon(s)
    _write_at(root, end, raw)
    with opened_store(root) as s:
        assert s.commit_log.write_offset == end
        assert s.max_offset(TOPIC, 0) == 1
        assert struct.unpack(">i", _read_at(root, end, 4))[0] == 0


def test_deleted_topic_is_not_rebuilt_after_a_crash(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = open_store(root)
    expected = _write_stream(s, 30)
    put(s, "Doomed", 0, b"gone")
    checkpoint(s)
    s.delete_topic("Doomed")
    checkpoint(s)  # the flush loop's next round, with no new messages
    abandon(s)
    with opened_store(root) as s:
        assert "Doomed" not in s.topics_in_store()
        assert s.get_messages("Doomed", 0, 0, 32).status == GetStatus.NO_MATCHED_LOGIC_QUEUE
        _check_queues(s, expected)
