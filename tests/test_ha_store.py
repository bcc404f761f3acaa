"""The store's replication seam: a master's commit log read out and written into a slave's store
at the same offsets, consume queues and index rebuilt from the entries (no sockets here)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from ferrymq.core.store import MessageStore
from ferrymq.core.store.commit_log import DispatchRequest
from ferrymq.core.store.entry import BATCH_FORMAT_KAFKA_V2
from ferrymq.core.store.message_store import ReplicationMismatch
from tests.test_store_support import SEGMENT, open_store, opened_store, put

TOPIC = "HaTopic"


def replicate(master: MessageStore, slave: MessageStore, rng: random.Random, start: int | None = None) -> int:
    """Copy what the slave lacks in frames of random size (cut mid-entry), as the HA link does."""
    offset = slave.replication_offset if start is None else start
    frames = 0
    while True:
        data = master.read_for_replication(offset, rng.randint(1, 3000))
        if not data:
            return frames
        slave.append_replicated(offset, data)
        offset += len(data)
        frames += 1


def queue_bytes(store: MessageStore, topic: str, queue_id: int, start: int = 0) -> list[bytes]:
    out = []
    for off in range(max(start, store.min_offset(topic, queue_id)), store.max_offset(topic, queue_id)):
        u = store.consume_queue(topic, queue_id).unit(off)
        assert u is not None and u[1] > 0, off
        out.append(bytes(store.commit_log.read(u[0], u[1])))
    return out


def fill(store: MessageStore, n: int, rng: random.Random) -> None:
    for i in range(n):
        q = i % 3
        if i % 17 == 5:
            store.put_batch_entry(TOPIC, q, 4, BATCH_FORMAT_KAFKA_V2, rng.randbytes(rng.randint(10, 900)))
        else:
            put(store, TOPIC, q, rng.randbytes(rng.randint(1, 1500)), tags=f"t{i % 2}", keys=[f"k{i}"])


def test_replicated_store_matches_the_master_byte_for_byte(tmp_path: Path) -> None:
    rng = random.Random(7)
    with opened_store(tmp_path / "m") as master, opened_store(tmp_path / "s") as slave:
        fill(master, 300, rng)  # several 64 KiB segments, BLANK fillers between them
        assert len(master.commit_log.files.files) >= 3
        seen: list[DispatchRequest] = []
        woke: list[tuple[str, int, int]] = []
        slave.dispatch_listeners.append(seen.append)
        slave.arrival_listeners.append(lambda t, q, off, _tag: woke.append((t, q, off)))
        assert slave.replication_offset == 0
        replicate(master, slave, rng, start=0)
        assert slave.commit_log_max_offset == master.commit_log_max_offset
        for q in range(3):
            assert slave.queue_bounds(TOPIC, q) == master.queue_bounds(TOPIC, q)
            assert queue_bytes(slave, TOPIC, q) == queue_bytes(master, TOPIC, q)
        assert len(seen) == 300 and woke
        # the index too: keys are found on the slave
        assert slave.query_by_key(TOPIC, "k42", 4, 0, 2**62) == master.query_by_key(TOPIC, "k42", 4, 0, 2**62)


def test_a_partial_entry_waits_for_its_rest(tmp_path: Path) -> None:
    with opened_store(tmp_path / "m") as master, opened_store(tmp_path / "s") as slave:
        r = put(master, TOPIC, 0, b"x" * 500)
        data = master.read_for_replication(0, 1 << 20)
        slave.append_replicated(0, data[:100])
        assert slave.max_offset(TOPIC, 0) == 0 and slave.replication_offset == 0
        slave.append_replicated(100, data[100:])
        assert slave.max_offset(TOPIC, 0) == 1 and slave.replication_offset == r.end_offset


def test_an_offset_that_is_not_the_slaves_end_is_refused(tmp_path: Path) -> None:
    with opened_store(tmp_path / "m") as master, opened_store(tmp_path / "s") as slave:
        for _ in range(3):
            put(master, TOPIC, 0, b"y" * 100)
        data = master.read_for_replication(0, 1 << 20)
        slave.append_replicated(0, data[:150])
        with pytest.raises(ReplicationMismatch):
            slave.append_replicated(300, data[300:])
        # an empty slave starts at a segment start
        with opened_store(tmp_path / "s2") as other, pytest.raises(ReplicationMismatch):
            other.append_replicated(100, data[100:])


def test_an_empty_slave_starts_at_the_masters_last_segment(tmp_path: Path) -> None:
    rng = random.Random(3)
    with opened_store(tmp_path / "m") as master:
        fill(master, 200, rng)
        last = master.replication_start(0)
        assert last == master.commit_log_max_offset - master.commit_log_max_offset % SEGMENT and last > 0
        assert master.replication_start(1234) == 1234
        with opened_store(tmp_path / "s") as slave:
            replicate(master, slave, rng, start=last)
            assert slave.commit_log_min_offset == last
            for q in range(3):
                lo, hi = slave.queue_bounds(TOPIC, q)
                assert hi == master.max_offset(TOPIC, q) and lo > 0
                assert queue_bytes(slave, TOPIC, q) == queue_bytes(master, TOPIC, q, lo)
        with opened_store(tmp_path / "s") as slave:  # and after a restart
            assert slave.commit_log_min_offset == last
            assert queue_bytes(slave, TOPIC, 1) == queue_bytes(master, TOPIC, 1, slave.min_offset(TOPIC, 1))


def test_a_restarted_slave_resumes_where_it_stopped(tmp_path: Path) -> None:
    rng = random.Random(11)
    with opened_store(tmp_path / "m") as master:
        fill(master, 120, rng)
        with opened_store(tmp_path / "s") as slave:
            replicate(master, slave, rng, start=0)
            data = master.read_for_replication(slave.replication_offset, 1 << 20)
            fill(master, 1, rng)
            data = master.read_for_replication(slave.replication_offset, 1 << 20)
            slave.append_replicated(slave.replication_offset, data[: len(data) // 2])  # a cut tail
        slave = open_store(tmp_path / "s")
        try:
            fill(master, 100, rng)
            replicate(master, slave, rng)
            for q in range(3):
                assert queue_bytes(slave, TOPIC, q) == queue_bytes(master, TOPIC, q)
        finally:
            slave.close()


def test_reads_for_replication_stay_in_one_segment(tmp_path: Path) -> None:
    rng = random.Random(5)
    with opened_store(tmp_path / "m") as master:
        fill(master, 200, rng)
        first_end = master.commit_log.files.files[0].end
        data = master.read_for_replication(first_end - 10, 1 << 20)
        assert len(data) == 10  # the end of the BLANK filler, never the next segment
        assert master.read_for_replication(master.commit_log_max_offset, 100) == b""
        assert len(master.read_for_replication(first_end, 100)) == 100
        with pytest.raises(ReplicationMismatch):
            master.read_for_replication(master.commit_log_max_offset + 1, 100)
        master.commit_log.files.delete_first()  # retention: a slave at offset 0 is now refused
        with pytest.raises(ReplicationMismatch):
            master.read_for_replication(0, 100)


def test_a_slave_store_refuses_puts(tmp_path: Path) -> None:
    with opened_store(tmp_path / "s", brokerRole="SLAVE", brokerId=1) as slave:
        assert slave.put_message(TOPIC, 0, b"x", "").status.name == "SERVICE_NOT_AVAILABLE"
        assert slave.put_batch_entry(TOPIC, 0, 1, 1, b"x").status.name == "SERVICE_NOT_AVAILABLE"
