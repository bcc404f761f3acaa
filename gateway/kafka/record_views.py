"""Kafka record batches for the admin API and console: one plain record view per record.

The admin's message page gets these through the frontend (``KafkaFrontend.batch_records``, a
``core.broker.frontend_view.FrontendView``), for the Kafka batch format with and without the
tag-code table (BATCH_FLAG_TAG_CODES). Records show as RocketMQ consumers would get them
(mapping.py): key as KEYS, headers as properties, the tags header as TAGS.
"""

from __future__ import annotations

import struct

from ferrymq.core.broker.frontend_view import RecordView
from ferrymq.core.store.commit_log import BATCH_FLAG_TAG_CODES, BATCH_FORMAT_KAFKA_V2
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb

#: the batch-entry formats the Kafka frontend stores
FORMATS = (BATCH_FORMAT_KAFKA_V2, BATCH_FORMAT_KAFKA_V2 | BATCH_FLAG_TAG_CODES)


def batch_records(fmt: int, payload: bytes, count: int) -> list[RecordView]:
    """The records of a stored Kafka batch entry's payload (ValueError if unreadable)."""
    if fmt & BATCH_FLAG_TAG_CODES:  # one 8-byte tag code per message comes first
        payload = payload[8 * count :]
    try:
        return _records(payload)
    except struct.error as exc:
        raise ValueError(f"unreadable record batch: {exc}") from None


def _records(payload: bytes) -> list[RecordView]:
    out: list[RecordView] = []
    pos = 0
    while pos + rb.HEADER_SIZE <= len(payload):
        info = rb.read_header(payload, pos)
        batch_base = rb.base_offset_of(payload, pos)
        for record in rb.iter_records(rb.records_bytes(payload, info), info.count, info.base_timestamp):
            out.append(
                RecordView(
                    batch_base + record.offset_delta,
                    record.timestamp,
                    record.value or b"",
                    mapping.record_properties(record),
                )
            )
        pos += info.size
    return out
