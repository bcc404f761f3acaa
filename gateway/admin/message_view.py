"""Stored entries to the API's message view: bodies as UTF-8 text when they decode, else base64.

A RocketMQ entry is decoded field by field. A batch entry (several messages stored verbatim,
e.g. a Kafka record batch) is shown as one item with its payload in base64, unless a decoder
for its format was registered (``AdminContext.batch_decoders``), which expands it to records.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from typing import Literal

from ferrymq.core.remoting.message import (
    MAGIC_V1,
    MAGIC_V2,
    PROPERTY_KEYS,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    create_offset_msg_id,
    decode_stored_message,
)
from ferrymq.core.store.commit_log import BATCH_HEAD, BATCH_MAGIC
from ferrymq.gateway.admin.models import MessageOut

#: (payload, first queue offset, base view) -> one view per record of the batch
BatchDecoder = Callable[[bytes, int, MessageOut], list[MessageOut]]

_HEAD = struct.Struct(">ii")


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
    pos, n = 0, len(buf)
    while pos + 8 <= n:
        size, magic = _HEAD.unpack_from(buf, pos)
        if size <= 0 or pos + size > n:
            break
        if magic in (MAGIC_V1, MAGIC_V2):
            out.append(_message(buf, pos))
        elif magic == BATCH_MAGIC:
            out.extend(_batch(bytes(buf[pos : pos + size]), store_ip, store_port, decoders or {}))
        pos += size
    return out


def _message(buf: bytes | memoryview, pos: int) -> MessageOut:
    m = decode_stored_message(buf, pos)
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
    entry: bytes, store_ip: bytes, store_port: int, decoders: dict[int, BatchDecoder]
) -> list[MessageOut]:
    _, _, queue_id, base, phys, store_ts, count, fmt, topic_len = BATCH_HEAD.unpack_from(entry, 0)
    start = BATCH_HEAD.size
    topic = entry[start : start + topic_len].decode(errors="replace")
    payload = entry[start + topic_len :]
    host = ".".join(str(b) for b in store_ip)
    view = MessageOut(
        msg_id=create_offset_msg_id(store_ip, store_port, phys),
        unique_key=None,
        topic=topic,
        queue_id=queue_id,
        queue_offset=base,
        commit_log_offset=phys,
        tags=None,
        keys=[],
        body=base64.b64encode(payload).decode(),
        body_encoding="base64",
        body_size=len(payload),
        properties={"BATCH_FORMAT": str(fmt), "BATCH_COUNT": str(count)},
        born_timestamp=store_ts,
        born_host="",
        store_timestamp=store_ts,
        store_host=f"{host}:{store_port}",
        reconsume_times=0,
        format="batch",
    )
    decoder = decoders.get(fmt)
    if decoder is not None:
        try:
            return decoder(payload, base, view)
        except ValueError:
            pass
    return [view]
