"""Kafka record batches for the admin API and console: one plain record view per record.

The admin's message page gets these through the frontend (``KafkaFrontend.batch_records``, a
``core.broker.frontend_view.FrontendView``), for the Kafka batch format; the store hands over the
payload after the tag-code table, keyed by format without flags. Records show as RocketMQ
consumers would get them (mapping.py): key as KEYS, headers as properties, the tags header as TAGS.
A transaction marker (control batch) shows as what it is: an empty body with the properties
``kafka.control`` (COMMIT or ABORT), ``kafka.producerId``, ``kafka.producerEpoch`` and
``kafka.coordinatorEpoch``; RocketMQ consumers never get it.
"""

from __future__ import annotations

import struct

from ferrymq.core.broker.frontend_view import RecordView
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2
from ferrymq.gateway.kafka import mapping
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.txn_partitions import ABORT, COMMIT, marker_of

#: the batch-entry formats the Kafka frontend stores
FORMATS = (BATCH_FORMAT_KAFKA_V2,)


def batch_records(fmt: int, payload: bytes, count: int) -> list[RecordView]:
    """The records of a stored Kafka batch entry's payload (ValueError if unreadable)."""
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
        if info.attributes & rb.CONTROL:
            out.append(_marker_view(payload[pos : pos + info.size], info, batch_base))
            pos += info.size
            continue
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


def _marker_view(batch: bytes, info: rb.BatchInfo, offset: int) -> RecordView:
    marker = marker_of(batch, info)
    kind = "UNKNOWN" if marker is None else {ABORT: "ABORT", COMMIT: "COMMIT"}.get(marker[0], "UNKNOWN")
    props = {
        "kafka.control": kind,
        "kafka.producerId": str(info.producer_id),
        "kafka.producerEpoch": str(info.producer_epoch),
    }
    if marker is not None:
        props["kafka.coordinatorEpoch"] = str(marker[1])
    return RecordView(offset, info.base_timestamp, b"", props)
