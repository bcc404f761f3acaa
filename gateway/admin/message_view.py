"""Stored entries to the API's message view: bodies as UTF-8 text when they decode, else base64.

Entries are read through the store (``iter_entries``). A RocketMQ entry is decoded field by
field. A batch entry (several messages stored verbatim, e.g. a Kafka record batch) is shown as
one item with its stored bytes in base64, unless a decoder for its format was registered
(``AdminContext.batch_decoders``), which expands it to records.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Literal

from ferrymq.core.remoting.message import (
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    MessageExt,
    create_offset_msg_id,
)
from ferrymq.core.store import EntryKind, StoredEntry, iter_entries
from ferrymq.gateway.admin.models import MessageOut

#: (payload of the format's own, first queue offset, base view) -> one view per record of the batch
BatchDecoder = Callable[[bytes, int, MessageOut], list[MessageOut]]


def body_fields(body: bytes) -> tuple[str, Literal["text", "base64"]]:
    try:
        return body.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), "base64"


def decode_entries(
    buf: bytes | memoryview,
    store_ip: bytes,
    store_port: int,
    decoders: dict[int, BatchDecoder] | None = None,
) -> list[MessageOut]:
    """Every entry in ``buf`` (back-to-back commit-log entries) as message views."""
    out: list[MessageOut] = []
    for entry in iter_entries(buf):
        if entry.kind is EntryKind.MESSAGE:
            out.append(_message(entry.message()))
        else:
            out.extend(_batch(entry, store_ip, store_port, decoders or {}))
    return out


def _message(m: MessageExt) -> MessageOut:
    text, encoding = body_fields(m.body)
    keys = m.properties.get(PROPERTY_KEYS)
    return MessageOut(
        msg_id=m.offset_msg_id,
        unique_key=m.properties.get(PROPERTY_UNIQ_KEY),
        topic=m.topic,
        queue_id=m.queue_id,
        queue_offset=m.queue_offset,
        commit_log_offset=m.commit_log_offset,
        tags=m.properties.get(PROPERTY_TAGS),
        keys=keys.split() if keys else [],
        body=text,
        body_encoding=encoding,
        body_size=len(m.body),
        properties=m.properties,
        born_timestamp=m.born_timestamp,
        born_host=m.born_host,
        store_timestamp=m.store_timestamp,
        store_host=m.store_host,
        reconsume_times=m.reconsume_times,
    )


def _batch(
    entry: StoredEntry, store_ip: bytes, store_port: int, decoders: dict[int, BatchDecoder]
) -> list[MessageOut]:
    stored = bytes(entry.tag_table) + bytes(entry.payload)  # all after the topic, as stored
    host = ".".join(str(b) for b in store_ip)
    view = MessageOut(
        msg_id=create_offset_msg_id(store_ip, store_port, entry.offset),
        unique_key=None,
        topic=entry.topic,
        queue_id=entry.queue_id,
        queue_offset=entry.queue_offset,
        commit_log_offset=entry.offset,
        tags=None,
        keys=[],
        body=base64.b64encode(stored).decode(),
        body_encoding="base64",
        body_size=len(stored),
        properties={"BATCH_FORMAT": str(entry.format | entry.flags), "BATCH_COUNT": str(entry.message_count)},
        born_timestamp=entry.store_timestamp,
        born_host="",
        store_timestamp=entry.store_timestamp,
        store_host=f"{host}:{store_port}",
        reconsume_times=0,
        format="batch",
    )
    decoder = decoders.get(entry.format)
    if decoder is not None:
        try:
            return decoder(bytes(entry.payload), entry.queue_offset, view)
        except ValueError:
            pass
    return [view]
