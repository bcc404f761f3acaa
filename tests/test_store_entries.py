"""The typed entry reads of core/store: StoredEntry, MessageStore.entries / entries_before /
entry_for / entry_at, and read_entry / iter_entries over buffers (in-process, tmp dirs)."""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path

import pytest

from ferrymq.core.remoting.message import tags_code
from ferrymq.core.store import (
    BATCH_FORMAT_KAFKA_V2,
    CorruptRecord,
    EntryKind,
    MessageStore,
    StoredEntry,
    iter_entries,
    read_entry,
)
from tests.test_store_support import SEGMENT, open_store, put

TOPIC = "Entries"


def _queue(store: MessageStore) -> tuple[list[int], bytes]:
    """Offsets 0-1 native, 2-4 one batch entry (tagged), 5 native; returns (phys offsets, payload)."""
    payload = b"kafka-records-" * 10
    phys = [put(store, TOPIC, 0, b"m0").phys_offset, put(store, TOPIC, 0, b"m1", tags="T").phys_offset]
    codes = [tags_code("A"), 0, tags_code("B")]
    phys.append(store.put_batch_entry(TOPIC, 0, 3, BATCH_FORMAT_KAFKA_V2, payload, codes).phys_offset)
    phys.append(put(store, TOPIC, 0, b"m5").phys_offset)
    return phys, payload


def _in_commit_log(view: memoryview) -> bool:
    """The view is of a mapped commit-log segment, not a copy."""
    return isinstance(view.obj, mmap.mmap)


def test_a_batch_entry_is_served_whole_and_once_from_an_offset_inside_it(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    phys, payload = _queue(store)
    got = list(store.entries(TOPIC, 0, 3))
    assert [(e.kind, e.queue_offset, e.message_count) for e in got] == [
        (EntryKind.BATCH, 2, 3),
        (EntryKind.MESSAGE, 5, 1),
    ]
    batch = got[0]
    assert (batch.offset, batch.queue_id, batch.topic) == (phys[2], 0, TOPIC)
    assert (batch.format, batch.next_queue_offset) == (BATCH_FORMAT_KAFKA_V2, 5)
    assert bytes(batch.payload) == payload  # the tag codes are not part of the payload
    assert batch.tag_codes == [tags_code("A"), 0, tags_code("B")]
    assert _in_commit_log(batch.payload) and _in_commit_log(batch.view)
    # from the start every entry comes once, in queue order; the batch's three units give one
    assert [e.offset for e in store.entries(TOPIC, 0, 0)] == phys
    assert [e.offset for e in store.entries_before(TOPIC, 0, 6)] == phys[::-1]
    assert [e.offset for e in store.entries_before(TOPIC, 0, 5, stop_offset=4)] == [phys[2]]
    for offset in (2, 3, 4):
        entry = store.entry_for(TOPIC, 0, offset)
        assert entry is not None and entry.offset == phys[2]
    store.close()


def test_a_message_entry(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    phys, _ = _queue(store)
    entry = store.entry_at(phys[1])
    assert isinstance(entry, StoredEntry)
    assert (entry.kind, entry.offset, entry.queue_id) == (EntryKind.MESSAGE, phys[1], 0)
    assert entry.queue_offset == 1
    assert (entry.message_count, entry.format, entry.topic, entry.tag_codes) == (1, 0, TOPIC, None)
    assert entry.size == phys[2] - phys[1]
    assert _in_commit_log(entry.payload) and bytes(entry.payload) == bytes(entry.view)
    msg = entry.message()
    assert (msg.body, msg.tags, msg.store_timestamp) == (b"m1", "T", entry.store_timestamp)
    assert store.entry_store_timestamp(phys[1]) == entry.store_timestamp
    assert store.queue_store_timestamp(TOPIC, 0, 1) == entry.store_timestamp
    with pytest.raises(ValueError):
        store.entry_at(phys[2]).message()  # a batch entry has no single message
    with pytest.raises(CorruptRecord):
        store.entry_at(phys[1] + 4)  # not where an entry starts
    store.close()


def test_units_past_the_end_and_unknown_queues_give_nothing(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    _queue(store)
    assert store.queue_bounds(TOPIC, 0) == (0, 6)
    assert list(store.entries(TOPIC, 0, 6)) == []
    assert list(store.entries(TOPIC, 0, 99)) == []
    assert store.entry_for(TOPIC, 0, 6) is None
    assert list(store.entries_before(TOPIC, 0, 0)) == []
    assert store.queue_bounds("Nowhere", 0) == (0, 0)
    assert list(store.entries("Nowhere", 0, 0)) == []
    assert list(store.entries_before("Nowhere", 0, 5)) == []
    assert store.entry_for("Nowhere", 0, 0) is None
    with pytest.raises(KeyError):
        store.entry_at(store.commit_log_max_offset)
    store.close()


def test_entries_start_at_the_min_offset_even_inside_a_batch(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    phys, _ = _queue(store)
    store.advance_min_offset(TOPIC, 0, 3)  # DeleteRecords into the middle of the batch entry
    assert [e.offset for e in store.entries(TOPIC, 0, 0)] == phys[2:]
    assert [e.offset for e in store.entries_before(TOPIC, 0, 6)] == [phys[3], phys[2]]
    store.advance_min_offset(TOPIC, 0, 5)
    assert [e.offset for e in store.entries(TOPIC, 0, 0)] == [phys[3]]
    assert [e.offset for e in store.entries_before(TOPIC, 0, 6)] == [phys[3]]
    store.close()


def test_entries_skip_what_retention_deleted(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    first = store.put_batch_entry(TOPIC, 0, 2, BATCH_FORMAT_KAFKA_V2, b"old-batch")
    while store.commit_log_max_offset < SEGMENT + 100:  # roll into a second segment
        put(store, "Filler", 0, b"x" * 900)
    second = store.put_batch_entry(TOPIC, 0, 2, BATCH_FORMAT_KAFKA_V2, b"new-batch")
    old = time.time() - 100 * 3600
    os.utime(sorted((tmp_path / "commitlog").iterdir())[0], (old, old))
    assert store.clean_expired(force=True) == 1
    assert store.commit_log_min_offset == SEGMENT
    assert store.commit_log_bytes == store.commit_log_max_offset - SEGMENT
    assert [bytes(e.payload) for e in store.entries(TOPIC, 0, 0)] == [b"new-batch"]
    assert [e.offset for e in store.entries_before(TOPIC, 0, 4)] == [second.phys_offset]
    with pytest.raises(KeyError):
        store.entry_at(first.phys_offset)
    store.close()


def test_read_entry_and_iter_entries_over_buffers(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    phys, payload = _queue(store)
    buf = bytes(store.commit_log.read(phys[0], store.commit_log_max_offset - phys[0]))
    entries = list(iter_entries(buf))
    assert [(e.kind, e.queue_offset) for e in entries] == [
        (EntryKind.MESSAGE, 0),
        (EntryKind.MESSAGE, 1),
        (EntryKind.BATCH, 2),
        (EntryKind.MESSAGE, 5),
    ]
    assert bytes(read_entry(buf, phys[2] - phys[0]).payload) == payload
    torn = buf[: phys[3] - phys[0] + 10]  # the last entry cut short: the walk ends before it
    assert [e.queue_offset for e in iter_entries(torn)] == [0, 1, 2]
    with pytest.raises(CorruptRecord):
        read_entry(torn, phys[3] - phys[0])
    bad = bytearray(buf[: phys[1] - phys[0]])
    struct.pack_into(">i", bad, 4, 0x12345678)  # unknown magic: no entry, skipped by the walk
    with pytest.raises(CorruptRecord):
        read_entry(bad)
    assert [e.queue_offset for e in iter_entries(bytes(bad) + buf[phys[1] - phys[0] :])] == [1, 2, 5]
    store.close()
