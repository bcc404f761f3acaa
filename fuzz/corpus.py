"""Seed inputs for every target, built with the project's own encoders (real frames, records,
batches), so that fuzzing starts from valid inputs and mutates them into the interesting near-misses.
Deterministic: the same seeds on every run."""

from __future__ import annotations

import struct
from collections.abc import Callable

from ferrymq.core.ha.codec import encode_frame_header, encode_report
from ferrymq.core.remoting.command import RemotingCommand, SerializeType
from ferrymq.core.remoting.frame import encode_frame_bytes
from ferrymq.core.remoting.message import encode_stored_message, properties_to_string
from ferrymq.core.store.entry import BATCH_FLAG_TAG_CODES, BATCH_FORMAT_KAFKA_V2, encode_batch_entry
from ferrymq.gateway.kafka import records as rb
from ferrymq.gateway.kafka.mapping import TAGS_HEADER

_TS = 1_700_000_000_000


def _commands() -> list[RemotingCommand]:
    ext = {"topic": "TopicTest", "queueId": "3", "properties": "TAGS\x01a\x02"}
    return [
        RemotingCommand(code=code, opaque=7, ext_fields=ext, remark=remark, body=body, serialize_type=st)
        for code, remark, body in ((310, None, b"hello"), (11, "a remark", b""), (105, "", b"\x00" * 9))
        for st in SerializeType
    ]


def remoting_headers() -> list[bytes]:
    """serialize-type byte (0 JSON, 1 ROCKETMQ) + an encoded header."""
    return [bytes([int(c.serialize_type)]) + c.encode_header() for c in _commands()]


def remoting_frames() -> list[bytes]:
    """piece-size byte + frames back to back (one, and all of them)."""
    frames = [encode_frame_bytes(c) for c in _commands()]
    return [b"\x04" + f for f in frames] + [b"\x00" + b"".join(frames)]


def _message(i: int, topic: bytes = b"TopicTest", body: bytes = b"body") -> bytes:
    props = properties_to_string({"TAGS": f"tag{i}", "KEYS": "k", "UNIQ_KEY": "AC11"}).encode()
    return encode_stored_message(
        topic=topic,
        body=body * (i + 1),
        properties=props,
        queue_id=i,
        queue_offset=10 + i,
        physical_offset=1000 * i,
        born_timestamp=_TS,
        born_host=b"\x7f\x00\x00\x01",
        born_port=1234,
        store_timestamp=_TS + 1,
        store_host=b"\x7f\x00\x00\x01",
        store_port=10911,
    )


def stored_messages() -> list[bytes]:
    msgs = [_message(i) for i in range(3)] + [_message(3, topic=b"T" * 200)]  # v2 magic: long topic
    return [*msgs, b"".join(msgs)]


def kafka_batches() -> list[bytes]:
    """Record batches of every codec, with and without the tags header and producer ids."""
    recs: list[rb.RecordTuple] = [
        (i, _TS + i, f"k{i}".encode(), b"value" * i, [(TAGS_HEADER, b"tagA"), ("h", None)]) for i in range(3)
    ]
    plain: list[rb.RecordTuple] = [(0, _TS, None, b"v", [])]
    out = [rb.build_batch(0, recs, codec=c) for c in (rb.NONE, rb.GZIP, rb.SNAPPY, rb.LZ4, rb.ZSTD)]
    out.append(rb.build_batch(5, plain, producer_id=4, producer_epoch=0, base_sequence=0))
    out.append(out[0] + out[-1])
    return out


def store_entries() -> list[bytes]:
    batch = rb.build_batch(0, [(0, _TS, None, b"v", []), (1, _TS, b"k", b"w", [])])
    entries = [
        encode_batch_entry(
            topic=b"kafka-topic",
            queue_id=1,
            base_queue_offset=40,
            physical_offset=5000,
            store_timestamp=_TS,
            count=2,
            fmt=fmt,
            payload=(struct.pack(">qq", 11, 0) if fmt & BATCH_FLAG_TAG_CODES else b"") + batch,
        )
        for fmt in (BATCH_FORMAT_KAFKA_V2, BATCH_FORMAT_KAFKA_V2 | BATCH_FLAG_TAG_CODES)
    ]
    entries += stored_messages()[:2]
    return [*entries, b"".join(entries)]


def kafka_frames() -> list[bytes]:
    """piece-size byte + size-prefixed requests."""
    reqs = kafka_requests()
    return [b"\x03" + struct.pack(">i", len(r)) + r for r in reqs[:8]] + [
        b"\x00" + b"".join(struct.pack(">i", len(r)) + r for r in reqs[:8])
    ]


def kafka_requests() -> list[bytes]:
    """Request frames (without the size prefix) of every served API key and version, built from
    kio's own types by hypothesis (derandomized: the same requests every run)."""
    from fuzz.kio_requests import request_frames  # hypothesis is a dev dependency only

    return request_frames()


def ha_streams() -> list[bytes]:
    """piece-size byte + HA frames carrying stored messages, heartbeats, and offset reports."""
    body = b"".join(_message(i) for i in range(2))
    frames = encode_frame_header(0, len(body)) + body + encode_frame_header(len(body), 0)
    reports = b"".join(encode_report(x) for x in (0, 123, 1 << 40))
    return [b"\x03" + frames, b"\x00" + frames, b"\x07" + reports]


def tls_hellos() -> list[bytes]:
    """piece-size byte + the first flight of TLS 1.2 and 1.3 clients (whole, cut short, run
    into garbage), and a plaintext remoting frame a TLS listener must refuse."""
    import ssl

    hellos = []
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = version
        obj = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            hellos.append(out.read())
    plain = encode_frame_bytes(_commands()[0])
    return [
        *(b"\x00" + h for h in hellos),
        *(b"\x05" + h[: len(h) // 2] for h in hellos),
        *(b"\x00" + h[:60] + bytes(range(256)) for h in hellos),
        b"\x00" + plain,
    ]


SEEDS: dict[str, Callable[[], list[bytes]]] = {
    "remoting_frames": remoting_frames,
    "remoting_header": remoting_headers,
    "stored_messages": stored_messages,
    "store_entries": store_entries,
    "kafka_frames": kafka_frames,
    "kafka_produce_batches": kafka_batches,
    "kafka_stored_batch": kafka_batches,
    "kafka_request": kafka_requests,
    "ha_stream": ha_streams,
    "tls_hello": tls_hellos,
}
