"""Log compaction: how fast one partition is cleaned, in-process (a store in a temporary directory).

``count`` records in Kafka batches of 100, keys drawn round-robin from ``keys``; one clean (the
thread's work: reading the view, the offset map, rewriting batches, writing and swapping the part)
is timed, then a full read of the compacted partition. Memory: the peak of Python allocations
(tracemalloc) during the cleans, with the offset map bounded to ``map_keys`` keys (the clean then
takes several passes), against the partition's size: it stays near the map's bound whatever the
partition's size (the compacted part is mapped and its survivors streamed to disk, never held).
Figures are printed, never asserted::

    .venv/bin/python -m bench.compaction_bench
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path

from ferrymq.core.config import BrokerConfig
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2, MessageStore
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.compaction import CleanPolicy, clean_partition

TOPIC = "compaction-bench"
BATCH = 100


def run(
    count: int = 200_000, keys: tuple[int, ...] = (1_000, 100_000), map_keys: int = 50_000
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for n_keys in keys:
        with tempfile.TemporaryDirectory() as tmp:
            store = MessageStore(
                BrokerConfig(storePathRootDir=Path(tmp), mappedFileSizeCommitLog=256 * 1024 * 1024)
            )
            now = int(time.time() * 1000)
            for base in range(0, count, BATCH):
                recs: list[rb.RecordTuple] = [
                    (i, now, f"key-{(base + i) % n_keys}".encode(), b"v" * 100, []) for i in range(BATCH)
                ]
                batch = bytearray(rb.build_batch(0, recs))
                rb.patch_base(batch, base)
                store.put_batch_entry(TOPIC, 0, BATCH, BATCH_FORMAT_KAFKA_V2, bytes(batch))
            before = store.commit_log_bytes
            t0 = time.perf_counter()
            tracemalloc.start()
            passes = 0
            later = int(time.time() * 1000) + 1000
            while (
                part := clean_partition(store, TOPIC, 0, CleanPolicy(0, 0, 0.0), later, map_capacity=map_keys)
            ) is not None:
                store.install_compacted(TOPIC, 0, part)
                passes += 1
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            t_clean = time.perf_counter() - t0
            part = store.compacted[(TOPIC, 0)]
            t0 = time.perf_counter()
            entries = sum(1 for _ in store.entries(TOPIC, 0, 0))
            t_read = time.perf_counter() - t0
            store.close()
            rows.append(
                {
                    "records": count,
                    "keys": n_keys,
                    "clean s": round(t_clean, 2),
                    "records/s": int(count / t_clean),
                    "bytes before": before,
                    "passes": passes,
                    "peak MiB": round(peak / 2**20, 1),
                    "bytes after": part.size,
                    "entries after": entries,
                    "read ms": round(t_read * 1000, 1),
                }
            )
    return rows


if __name__ == "__main__":
    from bench.__main__ import _table

    _table(run())
