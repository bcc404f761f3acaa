"""The admin message view of stored Kafka batch entries (in-process): with the Kafka decoder the
``ferrymq`` command registers, a batch shows record by record, tag-code table or not; without a
decoder it shows as one item holding the stored bytes."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

from ferrymq.core.remoting.message import tags_code
from ferrymq.core.store import BATCH_FORMAT_KAFKA_V2
from ferrymq.gateway.admin.frontends import batch_decoder
from ferrymq.gateway.admin.message_view import decode_entries
from ferrymq.gateway.kafka import mapping, record_views
from ferrymq.gateway.kafka import records as rb
from tests.test_store_support import open_store, put

TOPIC = "Viewed"


def test_kafka_batches_show_record_by_record_and_raw_without_a_decoder(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    tagged = [(i, 1000 + i, b"k%d" % i, b"v%d" % i, [(mapping.TAGS_HEADER, b"A")]) for i in range(3)]
    plain = [(i, 2000 + i, None, b"w%d" % i, []) for i in range(2)]
    payloads = []
    for records in (tagged, plain):
        batch = bytearray(rb.build_batch(0, records))
        rb.patch_base(batch, store.max_offset(TOPIC, 0))
        codes = mapping.batch_tag_codes(bytes(batch), rb.split_batches(bytes(batch))[0])
        store.put_batch_entry(TOPIC, 0, len(records), BATCH_FORMAT_KAFKA_V2, batch, codes)
        payloads.append(bytes(batch))
    put(store, TOPIC, 0, b"native")
    buf = b"".join(store.get_messages(TOPIC, 0, 0, 32).buffers)
    host, port = store.store_host, store.store_port

    # the decoder the admin server builds from the Kafka frontend's FrontendView (add_frontend)
    kafka_view = SimpleNamespace(batch_records=record_views.batch_records)
    decoder = batch_decoder(kafka_view, BATCH_FORMAT_KAFKA_V2)  # type: ignore[arg-type]
    views = decode_entries(buf, host, port, {BATCH_FORMAT_KAFKA_V2: decoder})
    assert [(v.queue_offset, v.body, v.tags, v.format) for v in views] == [
        (0, "v0", "A", "batch"),
        (1, "v1", "A", "batch"),
        (2, "v2", "A", "batch"),
        (3, "w0", None, "batch"),
        (4, "w1", None, "batch"),
        (5, "native", None, "rocketmq"),
    ]
    raw = decode_entries(buf, host, port)
    assert [(v.queue_offset, v.properties.get("BATCH_COUNT")) for v in raw] == [(0, "3"), (3, "2"), (5, None)]
    assert [v.properties.get("BATCH_FORMAT") for v in raw] == [str(BATCH_FORMAT_KAFKA_V2 | 0x100), "1", None]
    tag_table = b"".join(tags_code("A").to_bytes(8, "big", signed=True) for _ in range(3))
    assert base64.b64decode(raw[0].body) == tag_table + payloads[0]  # the bytes after the topic
    assert base64.b64decode(raw[1].body) == payloads[1]
    store.close()
