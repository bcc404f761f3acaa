"""Shutdown while a flush is running in its worker thread: close() waits for it, and the clean
checkpoint it writes is the last word; offset snapshots never go back in time."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from ferrymq.core.broker.consumer_offsets import ConsumerOffsetManager
from ferrymq.core.config import BrokerConfig
from ferrymq.core.store import MessageStore


def test_shutdown_waits_for_an_in_flight_flush(tmp_path: Path) -> None:
    cfg = BrokerConfig(storePathRootDir=tmp_path, mappedFileSizeCommitLog=1 << 20, flushIntervalCommitLog=20)
    store = MessageStore(cfg)
    in_flush = threading.Event()
    release = threading.Event()
    real_index_flush = store.index.flush

    def index_flush() -> None:
        if not in_flush.is_set():  # the flush loop's thread: stall it; close()'s own call goes on
            in_flush.set()
            release.wait(5)
        real_index_flush()

    store.index.flush = index_flush  # type: ignore[method-assign]

    async def scenario() -> None:
        store.start_services()
        store.put_message("T", 0, b"x", "")
        await asyncio.to_thread(in_flush.wait, 5)  # the loop's flush is inside its worker thread
        threading.Timer(0.3, release.set).start()
        await store.shutdown()  # cancels the loop task; its thread goes on until released

    asyncio.run(scenario())
    release.wait(5)
    checkpoint = json.loads((tmp_path / "checkpoint").read_text())
    assert checkpoint.get("end") == checkpoint["dispatched"], "the clean-shutdown checkpoint was overwritten"
    assert not (tmp_path / "abort").exists()
    reopened = MessageStore(cfg)
    assert not reopened.recovered_crash and reopened.max_offset("T", 0) == 1
    reopened.close()


def test_an_older_offset_snapshot_never_replaces_a_newer_one(tmp_path: Path) -> None:
    offsets = ConsumerOffsetManager(tmp_path / "consumerOffset.json")
    offsets.commit("g", "T", 0, 5)
    older = offsets._snapshot()
    offsets.commit("g", "T", 0, 9)
    newer = offsets._snapshot()
    offsets._write(*newer)
    offsets._write(*older)  # a slower thread finishing last
    assert ConsumerOffsetManager(tmp_path / "consumerOffset.json").query("g", "T", 0) == 9
