"""In-process store throughput: append and read, 128 B and 1 KiB bodies (no network); and pulls
filtered by SQL92 expressions against the unfiltered pull of the same queue (``run_filtered``)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ferrymq.core.broker.property_filter import get_matching
from ferrymq.core.config import BrokerConfig
from ferrymq.core.filter.sql92 import compiled
from ferrymq.core.remoting.message import properties_to_string, tags_code
from ferrymq.core.store import MessageStore


def run(count: int = 200_000, sizes: tuple[int, ...] = (128, 1024)) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = BrokerConfig(storePathRootDir=Path(tmp), mappedFileSizeCommitLog=256 * 1024 * 1024)
            store = MessageStore(cfg)
            body = b"x" * size
            props = properties_to_string({"TAGS": "TagA", "UNIQ_CLIENT_MESSAGE_ID_KEYIDX": "0" * 32})
            tc = tags_code("TagA")
            t0 = time.perf_counter()
            for i in range(count):
                store.put_message("BenchTopic", i & 7, body, props, tags_code=tc)
            t_put = time.perf_counter() - t0
            t0 = time.perf_counter()
            read = 0
            nbytes = 0
            for q in range(8):
                offset = 0
                while True:
                    r = store.get_messages("BenchTopic", q, offset, 32)
                    if not r.message_count:
                        break
                    read += r.message_count
                    nbytes += len(b"".join(r.buffers))
                    offset = r.next_begin_offset
            t_get = time.perf_counter() - t0
            assert read == count
            store.close()
            rows.append(
                {
                    "body": size,
                    "put msg/s": round(count / t_put),
                    "put MB/s": round(count * size / t_put / 1e6, 1),
                    "pull msg/s": round(read / t_get),
                    "pull MB/s": round(nbytes / t_get / 1e6, 1),
                }
            )
    return rows


#: (label, SQL92 expression or None for an unfiltered pull): all, half and a tenth of the messages match
FILTERS = [
    ("unfiltered", None),
    ("a >= 0", "a >= 0"),
    ("a > 4", "a > 4"),
    ("a = 9 AND b IS NULL", "a = 9 AND b IS NULL"),
]


def run_filtered(count: int = 100_000) -> list[dict[str, object]]:
    """Pull one queue of ``count`` 128 B messages (property ``a`` = 0..9) through the broker's
    filtered read, 32 at a time, against the unfiltered read (TAG ``*``: no property parsed)."""
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = BrokerConfig(storePathRootDir=Path(tmp), mappedFileSizeCommitLog=256 * 1024 * 1024)
        store = MessageStore(cfg)
        body = b"x" * 128
        for i in range(count):
            props = properties_to_string({"a": str(i % 10), "UNIQ_KEY": f"{i:032d}"})
            store.put_message("SqlBench", 0, body, props, tags_code=0)
        for label, expression in FILTERS:
            predicate = compiled(expression) if expression else None
            t0 = time.perf_counter()
            offset = delivered = 0
            while offset < count:
                if predicate is None:
                    r = store.get_messages("SqlBench", 0, offset, 32)
                else:
                    r = get_matching(store, "SqlBench", 0, offset, 32, 256 * 1024, predicate)
                delivered += r.message_count
                offset = r.next_begin_offset
            elapsed = time.perf_counter() - t0
            rows.append(
                {
                    "pull": label,
                    "scanned msg/s": round(count / elapsed),
                    "delivered msg/s": round(delivered / elapsed),
                    "delivered": delivered,
                }
            )
        store.close()
    return rows


if __name__ == "__main__":
    for row in run() + run_filtered():
        print(row)
