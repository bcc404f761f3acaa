"""Kafka framing, sans-IO: size-prefixed frames in, request headers parsed, responses out.

A request is ``int32 size | header | body``. Header v1 is ``api_key i16 | api_version i16 |
correlation_id i32 | client_id nullable string(i16)``; header v2 (flexible versions) adds tagged
fields. A response is ``int32 size | correlation_id i32 [| tagged fields (header v1)] | body``;
ApiVersions always answers with header v0 (no tagged fields) so any client can read it.
Bodies are kio dataclasses; nothing here does I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from kio.serial import entity_reader, entity_writer
from kio.serial.errors import BufferUnderflow
from kio.serial.readers import read_unsigned_varint

_SIZE = struct.Struct(">i")
_HEADER_V1 = struct.Struct(">hhih")
_HEADER_PEEK = struct.Struct(">hhi")
_RESPONSE_HEAD = struct.Struct(">ii")

#: Apache Kafka's socket.request.max.bytes
DEFAULT_MAX_REQUEST_SIZE = 100 * 1024 * 1024


class FrameError(ValueError):
    """Bytes that are not a Kafka request; the connection must be closed."""


class FrameTooLarge(FrameError):
    """A size prefix above the limit (or negative)."""


class FrameDecoder:
    """Feed bytes, get complete frames (without their size prefix) back.

    Every frame costs one copy: a frame inside one piece is sliced out of it; a frame arriving
    in pieces is kept as views of them and joined once, when complete (never joined with its
    size prefix and then sliced again).
    """

    __slots__ = ("_chunks", "_have", "_head", "_size", "max_size")

    def __init__(self, max_size: int = DEFAULT_MAX_REQUEST_SIZE) -> None:
        self.max_size = max_size
        self._head = b""  # the start of a size prefix split across pieces
        self._size = -1  # the size of the frame being assembled, -1 while reading a prefix
        self._chunks: list[bytes | memoryview] = []
        self._have = 0  # bytes of that frame held in _chunks

    def feed(self, data: bytes) -> list[bytes]:
        frames: list[bytes] = []
        pos, n = 0, len(data)
        while pos < n:
            if self._size < 0:
                if not self._head and n - pos >= 4:
                    (size,) = _SIZE.unpack_from(data, pos)
                    pos += 4
                else:
                    take = min(4 - len(self._head), n - pos)
                    self._head += bytes(data[pos : pos + take])
                    pos += take
                    if len(self._head) < 4:
                        break
                    (size,) = _SIZE.unpack(self._head)
                    self._head = b""
                if size < 0 or size > self.max_size:
                    raise FrameTooLarge(f"request of {size} bytes (limit {self.max_size})")
                if n - pos >= size:
                    frames.append(data[pos : pos + size])
                    pos += size
                    continue
                self._size = size
            need = self._size - self._have
            if n - pos < need:
                self._chunks.append(memoryview(data)[pos:])
                self._have += n - pos
                break
            self._chunks.append(memoryview(data)[pos : pos + need])
            pos += need
            frames.append(b"".join(self._chunks))
            self._chunks = []
            self._have = 0
            self._size = -1
        return frames

    @property
    def buffered(self) -> int:
        return len(self._head) + self._have


@dataclass(slots=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int  # where the body starts in the frame


def peek_header(frame: bytes) -> tuple[int, int, int]:
    """(api_key, api_version, correlation_id): readable in every header version."""
    if len(frame) < 8:
        raise FrameError(f"request of {len(frame)} bytes has no header")
    key, version, corr = _HEADER_PEEK.unpack_from(frame, 0)
    return key, version, corr


def parse_header(frame: bytes, flexible: bool) -> RequestHeader:
    """Header v1, or v2 when the API version is flexible (tagged fields skipped)."""
    if len(frame) < 10:
        raise FrameError(f"request of {len(frame)} bytes has no header")
    key, version, corr, id_len = _HEADER_V1.unpack_from(frame, 0)
    pos = 10
    client_id: str | None = None
    if id_len >= 0:
        if pos + id_len > len(frame):
            raise FrameError("client id runs past the request")
        try:
            client_id = frame[pos : pos + id_len].decode()
        except UnicodeDecodeError:
            raise FrameError("client id is not UTF-8") from None
        pos += id_len
    elif id_len != -1:
        raise FrameError(f"client id length {id_len}")
    if flexible:
        try:
            count, pos = read_uvarint(frame, pos)
            for _ in range(count):
                _tag, pos = read_uvarint(frame, pos)
                size, pos = read_uvarint(frame, pos)
                pos += size
        except (ValueError, IndexError, BufferUnderflow) as exc:
            raise FrameError(f"bad tagged fields in request header: {exc}") from None
        if pos > len(frame):
            raise FrameError("tagged fields run past the request")
    return RequestHeader(key, version, corr, client_id, pos)


def read_uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, position after it); kio's BufferUnderflow past the end, ValueError when too long."""
    value, size = read_unsigned_varint(buf, pos)
    return int(value), pos + size


#: writes at least this big are kept as separate parts (not copied); smaller ones are coalesced
BIG_WRITE = 16 * 1024


class Parts:
    """A records value made of several byte strings (stored batches), written out without ever
    being joined: kio writes a records field as its length then ``write(value)``, and the
    response writer below takes the parts one by one."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: list[bytes | memoryview]) -> None:
        self.parts = parts
        self.size = sum(len(p) for p in parts)

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)


class _Chunks:
    """A write target for kio: small writes coalesced, big ones (records) kept uncopied."""

    __slots__ = ("parts", "pending", "size")

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.pending = bytearray()
        self.size = 0

    def write(self, data: bytes | memoryview | Parts) -> int:
        if isinstance(data, Parts):
            for part in data.parts:
                self.write(part)
            return data.size
        n = len(data)
        self.size += n
        if n >= BIG_WRITE:
            if self.pending:
                self.parts.append(bytes(self.pending))
                self.pending.clear()
            self.parts.append(data)
        else:
            self.pending += data
        return n


def encode_response(correlation_id: int, response: Any, header_v0: bool = False) -> list[bytes | memoryview]:
    """A whole response frame as parts to write in order: size prefix, header (v0, or v1 for
    flexible bodies), body. Record payloads stay separate parts, so they are never copied again."""
    out = _Chunks()
    tagged = response.__flexible__ and not header_v0
    out.pending += b"\0" * (8 + tagged)
    entity_writer(type(response))(out, response)  # type: ignore[arg-type]
    if out.pending:
        out.parts.append(bytes(out.pending))
    first = out.parts[0]
    head = _RESPONSE_HEAD.pack(out.size + 4 + tagged, correlation_id)
    out.parts[0] = head + first[8:] if len(first) > 8 else head
    return out.parts


# ---- the client side (tests, tools) ------------------------------------------------------------


def encode_request(request: Any, correlation_id: int, client_id: str | None = "ferrymq") -> bytes:
    """A whole request frame for a kio request (header v1 or v2 as its version needs)."""
    header_type = type(request).__header_schema__
    header = header_type(
        request_api_key=request.__api_key__,
        request_api_version=request.__version__,
        correlation_id=correlation_id,
        client_id=client_id,
    )
    out = _Chunks()
    entity_writer(header_type)(out, header)  # type: ignore[arg-type]
    entity_writer(type(request))(out, request)  # type: ignore[arg-type]
    if out.pending:
        out.parts.append(bytes(out.pending))
    return _SIZE.pack(out.size) + b"".join(out.parts)


def decode_response(frame: bytes, response_type: type[Any]) -> tuple[int, Any]:
    """(correlation id, response) of a response frame without its size prefix."""
    header, offset = entity_reader(response_type.__header_schema__)(frame, 0)
    response, _ = entity_reader(response_type)(frame, offset)
    return int(header.correlation_id), response
