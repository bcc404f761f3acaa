"""Kafka record batches in the admin API and console: one message view per record.

Registered with ``AdminServer.add_batch_decoder`` for the Kafka batch format, with and without
the tag-code table (BATCH_FLAG_TAG_CODES), by the ``ferrymq`` command. Records show as RocketMQ
consumers would get them (mapping.py): key as KEYS, headers as properties, the tags header as TAGS.
"""

from __future__ import annotations

import struct

from ferrymq.core.remoting.message import PROPERTY_KEYS, PROPERTY_TAGS
from ferrymq.gateway.admin.message_view import body_fields
from ferrymq.gateway.admin.models import MessageOut
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb


def kafka_batch_views(
    payload: bytes, base: int, view: MessageOut, tag_table: bool = False
) -> list[MessageOut]:
    """The records of a stored Kafka batch entry as message views (ValueError if unreadable)."""
    if tag_table:
        payload = payload[8 * int(view.properties.get("BATCH_COUNT", "0")) :]
    try:
        return _views(payload, view)
    except struct.error as exc:
        raise ValueError(f"unreadable record batch: {exc}") from None


def _views(payload: bytes, view: MessageOut) -> list[MessageOut]:
    out: list[MessageOut] = []
    pos = 0
    while pos + rb.HEADER_SIZE <= len(payload):
        info = rb.read_header(payload, pos)
        batch_base = rb.base_offset_of(payload, pos)
        for record in rb.iter_records(rb.records_bytes(payload, info), info.count, info.base_timestamp):
            props = mapping.record_properties(record)
            body, encoding = body_fields(record.value or b"")
            keys = props.get(PROPERTY_KEYS)
            out.append(
                view.model_copy(
                    update={
                        "queue_offset": batch_base + record.offset_delta,
                        "tags": props.get(PROPERTY_TAGS),
                        "keys": keys.split() if keys else [],
                        "body": body,
                        "body_encoding": encoding,
                        "body_size": len(record.value or b""),
                        "properties": props,
                        "born_timestamp": record.timestamp,
                    }
                )
            )
        pos += info.size
    return out


def kafka_tagged_batch_views(payload: bytes, base: int, view: MessageOut) -> list[MessageOut]:
    return kafka_batch_views(payload, base, view, tag_table=True)
