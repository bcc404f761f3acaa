"""Helpers for the in-process MessageStore tests (tests/test_store*.py); holds no tests itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.message import (
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    MessageExt,
    decode_stored_messages,
    properties_to_string,
    tags_code,
)
from ferrymq.core.store import GetStatus, MessageStore, PutResult, PutStatus

SEGMENT = 64 * 1024
CQ_FILE = 20 * 50  # 50 units per consume-queue file: queues roll over too
STORE_IP = "10.0.0.5"
STORE_PORT = 10911


def make_config(root: Path, **overrides: object) -> BrokerConfig:
    values: dict[str, object] = {
        "storePathRootDir": str(root),
        "mappedFileSizeCommitLog": SEGMENT,
        "mappedFileSizeConsumeQueue": CQ_FILE,
        "maxHashSlotNum": 64,
        "maxIndexNum": 400,
        "brokerIP1": STORE_IP,
        "listenPort": STORE_PORT,
        "fileReservedTime": 72,
    }
    values.update(overrides)
    return BrokerConfig.build(values)


def open_store(root: Path, **overrides: object) -> MessageStore:
    return MessageStore(make_config(root, **overrides))


@contextmanager
def opened_store(root: Path, **overrides: object) -> Iterator[MessageStore]:
    """The store at ``root`` (re)opened for a block and closed cleanly after it, even on failure."""
    store = open_store(root, **overrides)
    try:
        yield store
    finally:
        store.close()


def put(
    store: MessageStore,
    topic: str,
    queue_id: int,
    body: bytes,
    *,
    tags: str | None = None,
    keys: list[str] | None = None,
    uniq: str | None = None,
    extra: dict[str, str] | None = None,
) -> PutResult:
    """Put one message as the send processor does: properties string plus derived index data."""
    props: dict[str, str] = dict(extra or {})
    if tags:
        props[PROPERTY_TAGS] = tags
    if keys:
        props[PROPERTY_KEYS] = " ".join(keys)
    if uniq:
        props[PROPERTY_UNIQ_KEY] = uniq
    result = store.put_message(
        topic,
        queue_id,
        body,
        properties_to_string(props),
        tags_code=tags_code(tags),
        keys=keys,
        uniq_key=uniq,
        born_timestamp=1_700_000_000_000,
        born_port=40000,
    )
    assert result.status == PutStatus.OK
    return result


def read_all(
    store: MessageStore, topic: str, queue_id: int, start: int = 0, batch: int = 7
) -> list[MessageExt]:
    """Every message from ``start`` on, following next_begin_offset as a consumer does."""
    out: list[MessageExt] = []
    offset = start
    for _ in range(100_000):
        res = store.get_messages(topic, queue_id, offset, batch)
        if res.status != GetStatus.FOUND:
            assert res.status in (GetStatus.OFFSET_OVERFLOW_ONE, GetStatus.NO_MATCHED_LOGIC_QUEUE), res
            return out
        msgs = decode_stored_messages(b"".join(res.buffers))
        assert len(msgs) == res.message_count
        assert res.next_begin_offset > offset
        out.extend(msgs)
        offset = res.next_begin_offset
    raise AssertionError("read_all did not terminate")


def abandon(store: MessageStore) -> None:
    """A kill -9: unmap and close without flushing, checkpointing or removing the abort file.

    Everything written went into shared mappings, so it is in the page cache, exactly what a
    killed process leaves behind.
    """
    for cq in store.consume_queues.values():
        cq.close()
    store.index.close()
    store.commit_log.close()


def checkpoint(store: MessageStore) -> None:
    """What the running broker's flush loop does every flushIntervalCommitLog ms."""

    async def run() -> None:
        store.start_services()
        await store.flush()

    asyncio.run(run())  # asyncio.run cancels the background services on the way out
