"""Log compaction (cleanup.policy=compact, compact,delete): what survives, for both protocols.

The cleaner keeps the last record of every key below the cleanable end, with its offset; batches
keep their base offset and last offset delta; tombstones go after delete.retention.ms; records
younger than min.compaction.lag.ms stay; RocketMQ pulls see the same survivors as Kafka fetches;
a crash at the swap point leaves the old compacted part; the cleaner runs off the loop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import crc32c
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.record.default_records import DefaultRecordBatchBuilder
from kio.schema.errors import ErrorCode

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import connect
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, MessageStore, compacted_log
from ferrymq.gateway.kafka import compaction
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from tests.remoting_helpers import pull
from tests.test_kafka_frontend import (
    Wire,
    create_topic,
    fetch,
    init_producer,
    list_offsets,
    produce,
    produced,
    run,
)
from tests.test_kafka_topic_configs import _errors
from tests.test_kafka_txn_partition import FakeCoordinator

CT = "changelog"
HOUR = 3_600_000


def keyed(*pairs: tuple[str, str | None], ts: int | None = None, codec: int = 0) -> bytes:
    ts = int(time.time() * 1000) if ts is None else ts
    b = DefaultRecordBatchBuilder(2, codec, False, -1, -1, -1, 1 << 20)
    for i, (k, v) in enumerate(pairs):
        b.append(i, ts + i, k.encode(), None if v is None else v.encode(), [])
    return bytes(b.build())


async def make_topic(wire: Wire, **configs: str) -> None:
    configs = {"cleanup_policy": "compact", **configs}
    assert (await wire.call(create_topic(CT, 1, **configs))).topics[0].error_code == ErrorCode.none


async def fetched(wire: Wire, offset: int = 0) -> list[tuple[int, str, str | None]]:
    """(offset, key, value) of every record fetched from ``offset`` (batches read with records.py)."""
    out: list[tuple[int, str, str | None]] = []
    while True:
        part = (await wire.call(fetch(offset, topic=CT))).responses[0].partitions[0]
        data = bytes(part.records or b"")
        if not data:
            return out
        pos = 0
        while pos < len(data):
            info = rb.read_header(data, pos)
            base = rb.base_offset_of(data, pos)
            for r in rb.iter_records(rb.records_bytes(data, info), info.count, info.base_timestamp):
                if base + r.offset_delta >= offset:
                    out.append((base + r.offset_delta, r.key.decode(), r.value and r.value.decode()))
            offset = base + info.last_offset_delta + 1
            pos += info.size


async def pulled(broker: Broker) -> list[tuple[int, str, str]]:
    """(offset, key, body) of every message a RocketMQ pull from 0 returns."""
    native = await connect("127.0.0.1", broker.port)
    out: list[tuple[int, str, str]] = []
    offset = 0
    try:
        while True:
            resp = await native.invoke(pull(CT, 0, offset, max_nums=2), timeout=5)
            nxt = int(resp.ext_fields["nextBeginOffset"])
            out += [
                (m.queue_offset, m.keys or "", m.body.decode()) for m in decode_stored_messages(resp.body)
            ]
            if nxt == offset:
                return out
            offset = nxt
    finally:
        native.close()


# ---- configs -------------------------------------------------------------------------------

SERVED = [
    ("cleanup.policy", "compact"),
    ("cleanup.policy", "compact,delete"),
    ("min.cleanable.dirty.ratio", "0.1"),
    ("delete.retention.ms", "1000"),
    ("min.compaction.lag.ms", "5000"),
]
INVALID = [
    ("min.cleanable.dirty.ratio", "1.5"),
    ("min.compaction.lag.ms", "-1"),
    ("cleanup.policy", "shrink"),
]


@pytest.mark.parametrize(("config", "value"), SERVED)
def test_compaction_configs_are_accepted_by_the_three_apis(tmp_path: Path, config: str, value: str) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        assert [e for e, _ in await _errors(wire, "t-new", config, value)] == [ErrorCode.none] * 3
        assert broker.topics.get("t-new").attributes[config] == value

    run(tmp_path, body)


@pytest.mark.parametrize(("config", "value"), INVALID)
def test_bad_compaction_values_are_invalid_config(tmp_path: Path, config: str, value: str) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        wire = await Wire.open(f.port)
        assert {e for e, _ in await _errors(wire, "t-new", config, value)} == {ErrorCode.invalid_config}

    run(tmp_path, body)


# ---- what survives -------------------------------------------------------------------------


def test_latest_value_per_key_survives_with_its_offset_for_kafka_and_rocketmq(tmp_path: Path) -> None:
    expected = [(2, "k4", "d4"), (3, "k0", "b0"), (4, "k2", "b2"), (5, "k1", None), (6, "k3", "c3")]

    async def first(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w, min_cleanable_dirty_ratio="0.1")
        await produced(w, keyed(("k0", "a0"), ("k1", "a1"), ("k4", "d4")), topic=CT)  # 0-2
        await produced(w, keyed(("k0", "b0"), ("k2", "b2")), topic=CT)  # 3-4
        await produced(w, keyed(("k1", None)), topic=CT)  # 5: a tombstone
        await produced(w, keyed(("k3", "c3")), topic=CT)  # 6
        before = await fetched(w)
        assert len(before) == 7
        assert await f.cleaner.clean_all() == 1  # all dirty: ratio 1.0
        assert await fetched(w) == expected
        # the rewritten first batch keeps its base offset and last offset delta (Kafka's cleaner)
        data = bytes((await w.call(fetch(0, topic=CT))).responses[0].partitions[0].records)
        info = rb.read_header(data)
        assert (rb.base_offset_of(data), info.last_offset_delta, info.count) == (0, 2, 1)
        # a fetch from inside a removed range starts at the next survivor
        assert (await fetched(w, 1))[0] == (2, "k4", "d4")
        listed = (await w.call(list_offsets(-2, -1, topic=CT))).topics[0].partitions
        assert [p.offset for p in listed] == [0, 7]
        # RocketMQ consumers see the same survivors (the tombstone as an empty body)
        assert await pulled(broker) == [(o, k, v or "") for o, k, v in expected]

    async def after_restart(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        assert await fetched(w) == expected
        await produced(w, keyed(("k3", "c3-new")), topic=CT)  # 7: dirty again
        # past delete.retention.ms the tombstone goes, and k3's older value too
        later = int(time.time() * 1000) + 86_400_000 + 1
        assert await f.cleaner.clean_all(now_ms=later) == 1
        assert await fetched(w) == [(2, "k4", "d4"), (3, "k0", "b0"), (4, "k2", "b2"), (7, "k3", "c3-new")]
        assert [o for o, _, _ in await pulled(broker)] == [2, 3, 4, 7]

    run(tmp_path, first)
    run(tmp_path, after_restart)


def test_a_compressed_batch_is_rewritten_with_its_codec(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w)
        one, two = "1" * 100, "2" * 100  # kafka-python leaves small batches uncompressed
        await produced(w, keyed(("a", one), ("b", one), ("a", two), codec=rb.GZIP), topic=CT)
        assert await f.cleaner.clean_all() == 1
        data = bytes((await w.call(fetch(0, topic=CT))).responses[0].partitions[0].records)
        assert rb.read_header(data).compression == rb.GZIP
        info = rb.read_header(data)
        assert info.size == len(data)
        assert crc32c.crc32c(data[rb.CRC_START :]) == struct.unpack_from(">I", data, 17)[0]
        assert await fetched(w) == [(1, "b", one), (2, "a", two)]

    run(tmp_path, body)


def txn_keyed(pid: int, seq: int, *pairs: tuple[str, str]) -> bytes:
    b = DefaultRecordBatchBuilder(2, 0, True, pid, 0, seq, 1 << 20)
    for i, (k, v) in enumerate(pairs):
        b.append(i, int(time.time() * 1000), k.encode(), v.encode(), [])
    return bytes(b.build())


def test_aborted_records_go_committed_ones_compact_and_open_transactions_wait(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        coord = f.txn_coordinator = FakeCoordinator()  # type: ignore[assignment]
        w = await Wire.open(f.port)
        await make_topic(w)
        pid = (await w.call(init_producer())).producer_id

        async def in_txn(seq: int, *pairs: tuple[str, str]) -> None:
            coord.added.add((pid, CT, 0))
            request = produce(txn_keyed(pid, seq, *pairs), topic=CT)
            r = await w.call(dataclasses.replace(request, transactional_id="tx"))
            assert r.responses[0].partition_responses[0].error_code == ErrorCode.none

        await produced(w, keyed(("a", "plain"), ("b", "plain")), topic=CT)  # 0-1
        await in_txn(0, ("a", "aborted"))  # 2
        await f.txn_partitions.write_markers(pid, 0, False, 0, [(CT, 0)])  # 3: ABORT
        await in_txn(1, ("b", "committed"), ("c", "committed"))  # 4-5
        await f.txn_partitions.write_markers(pid, 0, True, 0, [(CT, 0)])  # 6: COMMIT
        await in_txn(3, ("c", "open"))  # 7: still open, beyond the last stable offset
        assert await f.cleaner.clean_all() == 1
        assert broker.store.compacted[(CT, 0)].end == 7
        got = await fetched(w)
        assert [o for o, k, _ in got if k.startswith("\x00")] == [3, 6]  # the markers stay
        survivors = [(o, k, v) for o, k, v in got if not k.startswith("\x00")]
        assert survivors == [
            (0, "a", "plain"),
            (4, "b", "committed"),
            (5, "c", "committed"),
            (7, "c", "open"),
        ]

    run(tmp_path, body)


def test_records_younger_than_min_compaction_lag_stay(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w, min_compaction_lag_ms=str(HOUR))
        for i in range(3):
            await produced(w, keyed(("k", f"v{i}")), topic=CT)
        assert await f.cleaner.clean_all() == 0
        assert [o for o, _, _ in await fetched(w)] == [0, 1, 2]
        assert await f.cleaner.clean_all(now_ms=int(time.time() * 1000) + HOUR + 1) == 1
        assert await fetched(w) == [(2, "k", "v2")]

    run(tmp_path, body)


def test_min_cleanable_dirty_ratio_decides_when_a_partition_is_cleaned(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w, min_cleanable_dirty_ratio="0.9")
        for i in range(10):
            await produced(w, keyed(*[(f"k{j}", f"v{i}") for j in range(5)]), topic=CT)
        assert await f.cleaner.clean_all() == 1  # all dirty: ratio 1.0
        await produced(w, keyed(("k0", "new")), topic=CT)  # a little dirt over a clean part
        assert await f.cleaner.clean_all() == 0
        assert len(await fetched(w)) == 6

    run(tmp_path, body)


# ---- crash at the swap point ---------------------------------------------------------------


class Crash(BaseException):
    """kill -9 at the swap point: nothing after it runs."""


def test_a_crash_at_the_swap_point_leaves_the_old_compacted_part(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def first(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w)
        await produced(w, keyed(("a", "1"), ("b", "1")), topic=CT)
        await produced(w, keyed(("a", "2")), topic=CT)
        assert await f.cleaner.clean_all() == 1
        await produced(w, keyed(("b", "2"), ("a", "3")), topic=CT)
        seen["before"] = await fetched(w)
        policy = compaction.policy_of(broker.topics.get(CT))
        assert policy is not None

        def crash(tmp: Path) -> None:
            seen["tmp"] = tmp
            raise Crash

        now = int(time.time() * 1000)
        with pytest.raises(Crash):
            await asyncio.to_thread(
                compaction.clean_partition, broker.store, CT, 0, policy, now, force=True, before_swap=crash
            )
        assert seen["tmp"].exists()  # the new part was written whole, not swapped in

    async def after_restart(broker: Broker, f: KafkaFrontend) -> None:
        assert not seen["tmp"].exists()
        w = await Wire.open(f.port)
        assert (
            await fetched(w) == seen["before"] == [(1, "b", "1"), (2, "a", "2"), (3, "b", "2"), (4, "a", "3")]
        )
        assert await f.cleaner.clean_all(force=True) == 1  # the next clean completes
        assert await fetched(w) == [(3, "b", "2"), (4, "a", "3")]

    run(tmp_path, first)
    run(tmp_path, after_restart)


_KILL_AT_SWAP = """
import os, signal, sys, time
from pathlib import Path
from ferrymq.core.config import BrokerConfig
from ferrymq.core.store import MessageStore
from ferrymq.gateway.kafka.compaction import CleanPolicy, clean_partition
store = MessageStore(BrokerConfig(store_path_root_dir=Path(sys.argv[1]), listen_port=0))
def kill(tmp):
    print(tmp, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
clean_partition(store, sys.argv[2], 0, CleanPolicy(0, 0, 0.0), int(time.time() * 1000), force=True,
                before_swap=kill)
"""


@pytest.mark.process
def test_kill_9_at_the_swap_point_leaves_a_consistent_partition(tmp_path: Path) -> None:
    """A real kill -9 of a process cleaning the store, between writing the new part and the rename."""
    seen: dict[str, Any] = {}

    async def first(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w)
        await produced(w, keyed(("a", "0")), topic=CT)
        await produced(w, keyed(("a", "1"), ("b", "1")), topic=CT)
        assert await f.cleaner.clean_all() == 1
        await produced(w, keyed(("a", "2")), topic=CT)
        seen["before"] = await fetched(w)

    async def after_restart(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        old = [(1, "a", "1"), (2, "b", "1"), (3, "a", "2")]  # the old part and the dirty head
        assert await fetched(w) == seen["before"] == old
        assert await pulled(broker) == old

    run(tmp_path, first)
    done = subprocess.run(
        [sys.executable, "-c", _KILL_AT_SWAP, str(tmp_path / "store"), CT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert Path(done.stdout.strip()).exists()  # killed with the new part written, not swapped in
    run(tmp_path, after_restart)
    assert not Path(done.stdout.strip()).exists()


def test_after_the_rename_the_newest_part_wins_and_the_old_goes(tmp_path: Path) -> None:
    d = tmp_path / "c" / "t" / "0"
    old = compacted_log.write(d, 5, [])
    (d / "00000000000000000009.log").write_bytes(b"")  # renamed in; the old one not yet removed
    part = compacted_log.load(d)
    assert part is not None and part.end == 9
    assert not old.path.exists()


# ---- clients and the loop ------------------------------------------------------------------


def test_a_kafka_python_consumer_reading_from_zero_while_the_topic_is_compacted(tmp_path: Path) -> None:
    keys = 10

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w)
        for i in range(40):
            await produced(w, keyed(*[(f"k{j}", f"{i}") for j in range(i % 3, keys, 2)]), topic=CT)
        end = broker.store.max_offset(CT, 0)
        latest: dict[str, str] = {}
        for _, k, v in await fetched(w):
            latest[k] = v or ""
        started, go = threading.Event(), threading.Event()

        def consume() -> list[tuple[int, str, str]]:
            c = KafkaConsumer(
                bootstrap_servers=f"127.0.0.1:{f.port}",
                enable_auto_commit=False,
                max_partition_fetch_bytes=200,  # a batch or so a fetch: it reads across the clean
            )
            tp = TopicPartition(CT, 0)
            c.assign([tp])
            c.seek(tp, 0)
            got: list[tuple[int, str, str]] = []
            try:
                while not got or got[-1][0] < end - 1:
                    for rec in c.poll(timeout_ms=1000).get(tp, []):
                        got.append((rec.offset, rec.key.decode(), rec.value.decode()))
                    if got and not started.is_set():
                        started.set()
                        go.wait(10)
            finally:
                c.close()
            return got

        reader = asyncio.create_task(asyncio.to_thread(consume))
        await asyncio.to_thread(started.wait, 10)
        assert await f.cleaner.clean_all() == 1
        go.set()
        got = await reader
        offsets = [o for o, _, _ in got]
        assert offsets == sorted(set(offsets))  # increasing, nothing twice
        assert len(offsets) < end  # it read compacted data past the point it had reached
        seen = {k: v for _, k, v in got}
        assert seen == latest  # every key's latest value

    run(tmp_path, body)


def test_the_cleaner_does_not_block_the_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        w = await Wire.open(f.port)
        await make_topic(w)
        for i in range(50):
            await produced(w, keyed(*[(f"k{j}", f"{i}") for j in range(20)]), topic=CT)
        inside, release = threading.Event(), threading.Event()
        real = compaction.clean_partition

        def held(*args: Any, **kw: Any) -> Any:
            inside.set()
            release.wait(10)
            return real(*args, **kw)

        monkeypatch.setattr(compaction, "clean_partition", held)
        cleaning = asyncio.create_task(f.cleaner.clean_all())
        await asyncio.to_thread(inside.wait, 10)
        answered = await w.call(fetch(990, topic=CT))  # served while the clean is under way
        assert answered.responses[0].partitions[0].error_code == ErrorCode.none
        assert not cleaning.done()
        release.set()
        assert await cleaning == 1
        assert len(await fetched(w)) == 20

    run(tmp_path, body)


# ---- bounded memory --------------------------------------------------------------------------


def test_a_partition_with_more_keys_than_the_offset_map_holds_compacts_in_passes(tmp_path: Path) -> None:
    """The offset map holds the dirty section's keys only, at most ``map_capacity``: a clean stops
    where it fills and the next goes on; the end result is the latest record per key, offsets kept,
    read from a compacted part that is mapped, not loaded."""
    store = MessageStore(BrokerConfig(storePathRootDir=tmp_path, mappedFileSizeCommitLog=4 * 1024 * 1024))
    try:
        now = int(time.time() * 1000)
        n, keys, per_batch = 600, 40, 10
        for base in range(0, n, per_batch):
            recs: list[rb.RecordTuple] = [
                (i, now, f"k{(base + i) * 7 % keys}".encode(), f"v{base + i}".encode(), [])
                for i in range(per_batch)
            ]
            batch = bytearray(rb.build_batch(0, recs))
            rb.patch_base(batch, base)
            store.put_batch_entry(CT, 0, per_batch, BATCH_FORMAT_KAFKA_V2, bytes(batch))
        policy, later = compaction.CleanPolicy(HOUR, 0, 0.0), int(time.time() * 1000) + 1000
        ends = []
        while (part := compaction.clean_partition(store, CT, 0, policy, later, map_capacity=15)) is not None:
            store.install_compacted(CT, 0, part)
            ends.append(part.end)
        assert len(ends) > 2 and ends[-1] == n, "several passes, the last one reaching the end"
        survivors: dict[str, tuple[int, str]] = {}
        for entry in store.entries(CT, 0, 0):
            data = entry.payload
            info = rb.read_header(data, 0)
            base = rb.base_offset_of(data, 0)
            for r in rb.iter_records(rb.records_bytes(data, info), info.count, info.base_timestamp):
                key = r.key.decode()
                assert key not in survivors, f"{key} survived twice"
                survivors[key] = (base + r.offset_delta, r.value.decode())
        latest = {f"k{o * 7 % keys}": o for o in range(n)}
        assert survivors == {k: (o, f"v{o}") for k, o in latest.items()}
    finally:
        store.close()
