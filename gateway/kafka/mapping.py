"""Kafka records <-> RocketMQ messages: how one protocol reads what the other wrote.

    Kafka record                 RocketMQ message
    value                  <->   body
    key (UTF-8)            <->   KEYS property
    headers                <->   user properties (UTF-8 values)
    header "rocketmq.tags" <->   TAGS property (native tag filters apply)
    offset                  =    queue offset
    timestamp              <->   born timestamp

Header names or values holding the property separators (\\x01, \\x02) cannot be properties and
are left out; non-UTF-8 bytes are replaced. A Kafka record batch is one commit-log batch entry;
a RocketMQ consumer gets one stored message per record (``to_stored_messages``), and a Kafka
consumer gets native messages as record batches (``native_batch``).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable

import cramjam

from ferrymq.core.remoting.message import (
    NAME_VALUE_SEPARATOR,
    PROPERTY_KEYS,
    PROPERTY_SEPARATOR,
    PROPERTY_TAGS,
    PROPERTY_UNIQ_KEY,
    SYSFLAG_COMPRESSED,
    SYSTEM_PROPERTIES,
    MessageExt,
    encode_stored_message,
    properties_to_string,
    tags_code,
)
from ferrymq.core.store import StoredEntry
from ferrymq.gateway.kafka import records as rb

log = logging.getLogger("ferrymq.kafka")

#: the record header that carries RocketMQ tags (one tag string, as the TAGS property)
TAGS_HEADER = "rocketmq.tags"
TAGS_HEADER_BYTES = TAGS_HEADER.encode()
_SEPARATORS = (NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def _property_safe(text: str) -> bool:
    return not any(sep in text for sep in _SEPARATORS)


def record_properties(record: rb.Record) -> dict[str, str]:
    """The RocketMQ properties of a Kafka record: KEYS, TAGS and the other headers."""
    props: dict[str, str] = {}
    for name, value in record.headers:
        text = _text(value)
        if not (name and _property_safe(name) and _property_safe(text)):
            continue
        if name == TAGS_HEADER:
            if text:
                props[PROPERTY_TAGS] = text
        elif name not in SYSTEM_PROPERTIES:
            props[name] = text
    if record.key is not None:
        key = _text(record.key)
        if _property_safe(key) and key:
            props[PROPERTY_KEYS] = key
    return props


def batch_tag_codes(
    batch: bytes, info: rb.BatchInfo, limit: int = rb.DEFAULT_MAX_INFLATED
) -> list[int] | None:
    """Per-record tag codes of a batch whose records carry the tags header; None if none do.

    Only batches containing the header name (looked for at memchr speed, after decompressing a
    compressed batch, to at most ``limit`` bytes: InflateLimit beyond) are parsed record by record.
    """
    start, end = info.start + rb.HEADER_SIZE, info.start + info.size
    if info.compression == rb.NONE:
        if batch.find(TAGS_HEADER_BYTES, start, end) < 0:
            return None
        data = batch[start:end]
    else:
        data = rb.records_bytes(batch, info, limit)
        if TAGS_HEADER_BYTES not in data:
            return None
    codes = []
    for record in rb.iter_records(data, info.count, info.base_timestamp):
        code = 0
        for name, value in record.headers:
            if name == TAGS_HEADER:
                code = tags_code(_text(value))
        codes.append(code)
    return codes if any(codes) else None


def to_stored_messages(
    entry: StoredEntry,
    from_offset: int,
    tag_codes: frozenset[int] | set[int] | None,
    store_host: bytes,
    store_port: int,
    limit: int = rb.DEFAULT_MAX_INFLATED,
    aborted: Callable[[int, int], bool] | None = None,
) -> bytes:
    """A Kafka batch entry as RocketMQ stored messages (a pull body), one per record.

    A batch that does not inflate within ``limit`` bytes (or at all) is skipped, and logged.
    Control batches (transaction markers) are no messages, and a transactional batch for which
    ``aborted(producer id, base offset)`` holds belongs to an aborted transaction: both skipped.
    """
    queue_id, base, phys, store_ts = entry.queue_id, entry.queue_offset, entry.offset, entry.store_timestamp
    topic = entry.topic.encode()
    payload = entry.payload
    out: list[bytes] = []
    pos = 0
    while pos + rb.HEADER_SIZE <= len(payload):
        info = rb.read_header(payload, pos)
        batch_base = rb.base_offset_of(payload, pos)
        if batch_base + info.count <= from_offset or (
            info.attributes & rb.TRANSACTIONAL
            and (
                info.attributes & rb.CONTROL
                or (aborted is not None and aborted(info.producer_id, batch_base))
            )
        ):
            pos += info.size
            continue
        try:
            data = rb.records_bytes(payload, info, limit)
        except ValueError as exc:
            log.warning(
                "%s-%d: the batch at offset %d skipped in a RocketMQ pull: %s",
                entry.topic,
                queue_id,
                batch_base,
                exc,
            )
            pos += info.size
            continue
        for record in rb.iter_records(data, info.count, info.base_timestamp):
            offset = batch_base + record.offset_delta
            if offset < from_offset:
                continue
            props = record_properties(record)
            if tag_codes is not None and tags_code(props.get(PROPERTY_TAGS)) not in tag_codes:
                continue
            props[PROPERTY_UNIQ_KEY] = f"{phys:024X}{offset - base:08X}"
            out.append(
                encode_stored_message(
                    topic=topic,
                    body=record.value or b"",
                    properties=properties_to_string(props).encode(),
                    queue_id=queue_id,
                    queue_offset=offset,
                    physical_offset=phys,
                    born_timestamp=record.timestamp,
                    born_host=store_host,
                    born_port=0,
                    store_timestamp=store_ts,
                    store_host=store_host,
                    store_port=store_port,
                )
            )
        pos += info.size
    return b"".join(out)


def native_body(msg: MessageExt) -> bytes:
    """The body a producer sent: RocketMQ clients compress big bodies (sysFlag COMPRESSED, the
    codec in bits 8-10: 0/3 zlib, 1 LZ4 frame, 2 zstd)."""
    if not msg.sys_flag & SYSFLAG_COMPRESSED:
        return msg.body
    kind = (msg.sys_flag >> 8) & 0x7
    try:
        if kind == 1:
            return bytes(cramjam.lz4.decompress(msg.body))
        if kind == 2:
            return bytes(cramjam.zstd.decompress(msg.body))
        return zlib.decompress(msg.body)
    except (zlib.error, cramjam.DecompressionError) as exc:
        log.warning(
            "message at queue offset %d does not inflate (%s): served as stored", msg.queue_offset, exc
        )
        return msg.body


def native_record(msg: MessageExt, base_offset: int) -> rb.RecordTuple:
    """One native message as a record for ``records.build_batch``."""
    headers: list[tuple[str, bytes | None]] = [
        (k, v.encode()) for k, v in msg.properties.items() if k not in SYSTEM_PROPERTIES
    ]
    tags = msg.properties.get(PROPERTY_TAGS)
    if tags:
        headers.append((TAGS_HEADER, tags.encode()))
    keys = msg.properties.get(PROPERTY_KEYS)
    return (
        msg.queue_offset - base_offset,
        msg.born_timestamp,
        keys.encode() if keys else None,
        native_body(msg),
        headers,
    )


def native_batch(messages: Iterable[MessageExt]) -> bytes:
    """Consecutive native messages as one Kafka record batch (offsets = queue offsets)."""
    msgs = list(messages)
    base = msgs[0].queue_offset
    return rb.build_batch(base, [native_record(m, base) for m in msgs])
