"""Produce v0-2, answered UNSUPPORTED_VERSION (35) as Apache Kafka 4.0 does (KAFKA-18659).

ApiVersions advertises Produce from v0 because librdkafka < 2.11.1 gates compression on that
range, but the codec (Kafka 4's schemas) cannot read v0-2. A client that really sends one gets a
well-formed v0-2 response with error 35 for every partition it named, instead of a closed
connection. Sans-IO: bytes in, bytes out.

Request body (v0-2, non-flexible): acks i16, timeout i32, [topic: name str, [partition i32,
records bytes]]. Response body: [topic: name, [partition i32, error i16, base_offset i64,
(v2) log_append_time i64]], (v1+) throttle_time_ms i32.
"""

from __future__ import annotations

import struct

UNSUPPORTED_VERSION = 35


class _Reader:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> bytes:
        n = self.take(">h")
        raw = self.data[self.pos : self.pos + max(n, 0)]
        self.pos += max(n, 0)
        return raw

    def skip_bytes(self) -> None:
        n = self.take(">i")
        self.pos += max(n, 0)


def unsupported_response(frame: bytes, version: int, body_offset: int) -> bytes | None:
    """The framed response for a Produce v0-2 request; None for acks=0 (no response at all).

    Raises ValueError (struct.error) for a body that cannot be read.
    """
    r = _Reader(frame, body_offset)
    acks = r.take(">h")
    r.take(">i")  # timeout
    out = bytearray()
    topics = r.take(">i")
    out += struct.pack(">i", max(topics, 0))
    for _ in range(max(topics, 0)):
        name = r.string()
        out += struct.pack(">h", len(name)) + name
        partitions = r.take(">i")
        out += struct.pack(">i", max(partitions, 0))
        for _ in range(max(partitions, 0)):
            index = r.take(">i")
            r.skip_bytes()
            out += struct.pack(">ihq", index, UNSUPPORTED_VERSION, -1)
            if version >= 2:
                out += struct.pack(">q", -1)
    if version >= 1:
        out += struct.pack(">i", 0)
    if acks == 0:
        return None
    (corr,) = struct.unpack_from(">i", frame, 4)
    body = struct.pack(">i", corr) + bytes(out)
    return struct.pack(">i", len(body)) + body
