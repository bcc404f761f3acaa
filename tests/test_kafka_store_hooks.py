"""What the Kafka frontend needs from core/store: per-message tag codes in batch entries (kept
through crash recovery), batch-entry converters for RocketMQ pulls, and a movable queue start."""

from __future__ import annotations

import shutil
from pathlib import Path

from ferrymq.core.remoting.message import decode_stored_messages, tags_code
from ferrymq.core.store import GetStatus, StoredEntry
from ferrymq.core.store.entry import BATCH_FORMAT_KAFKA_V2
from tests.test_store_support import abandon, open_store, put

TOPIC = "Hooks"
A, B = tags_code("A"), tags_code("B")


def test_tag_codes_of_a_batch_entry_filter_pulls_and_survive_a_crash(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    woken: list[tuple[int, int]] = []
    store.arrival_listeners.append(lambda t, q, off, code: woken.append((off, code)))
    store.put_batch_entry(TOPIC, 0, 3, BATCH_FORMAT_KAFKA_V2, b"x" * 30, [A, 0, B])
    store.put_batch_entry(TOPIC, 0, 2, BATCH_FORMAT_KAFKA_V2, b"y" * 20)  # untagged: no table
    assert sorted(woken) == sorted([(2, A), (2, 0), (2, B), (4, 0)])  # filtered waiters wake too

    def matching(codes: set[int], offset: int = 0) -> tuple[GetStatus, int, int]:
        r = store.get_messages(TOPIC, 0, offset, 32, tag_codes=frozenset(codes))
        return r.status, r.message_count, r.next_begin_offset

    assert matching({B}) == (GetStatus.FOUND, 1, 5)
    assert matching({A}, offset=1)[:2] == (GetStatus.NO_MATCHED_MESSAGE, 0)
    abandon(store)  # kill -9, and the consume queue is lost as well
    shutil.rmtree(tmp_path / "consumequeue" / TOPIC)
    store = open_store(tmp_path)
    assert store.max_offset(TOPIC, 0) == 5
    assert matching({B}) == (GetStatus.FOUND, 1, 5)
    assert [store.consume_queue(TOPIC, 0).unit(i)[2] for i in range(5)] == [A, 0, B, 0, 0]  # type: ignore[index]
    store.close()


def test_pulls_read_batch_entries_through_the_registered_converter(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    put(store, TOPIC, 1, b"native-0", tags="A")
    store.put_batch_entry(TOPIC, 1, 2, BATCH_FORMAT_KAFKA_V2, b"kafka-batch", [A, B])
    put(store, TOPIC, 1, b"native-3")
    calls = []

    def convert(entry: StoredEntry, from_offset: int, codes: object) -> bytes:
        calls.append((entry.queue_offset, from_offset, codes))
        # one native-looking message standing for the batch
        return bytes(store.get_messages(TOPIC, 1, 0, 1).buffers[0])

    store.batch_converters[BATCH_FORMAT_KAFKA_V2] = convert
    result = store.get_messages(TOPIC, 1, 0, 32)
    msgs = decode_stored_messages(b"".join(store.as_stored_messages(result.buffers, 0, None)))
    assert [m.body for m in msgs] == [b"native-0", b"native-0", b"native-3"]
    assert calls == [(1, 0, None)]
    plain = store.get_messages(TOPIC, 1, 3, 32)
    assert store.as_stored_messages(plain.buffers, 3) == plain.buffers  # no batch entry: untouched
    store.close()


def test_advance_min_offset_moves_forward_only_and_within_the_queue(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    for i in range(5):
        put(store, TOPIC, 2, b"m%d" % i)
    assert store.advance_min_offset(TOPIC, 2, 3) == 3
    assert store.advance_min_offset(TOPIC, 2, 1) == 3
    assert store.advance_min_offset(TOPIC, 2, 99) == 5
    assert store.get_messages(TOPIC, 2, 0, 10).status == GetStatus.OFFSET_TOO_SMALL
    assert store.advance_min_offset("NoSuchTopic", 0, 3) == 0
    store.close()
