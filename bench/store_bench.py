"""In-process store throughput: append and read, 128 B and 1 KiB bodies (no network)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ferrymq.core.config import BrokerConfig
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


if __name__ == "__main__":
    for row in run():
        print(row)
