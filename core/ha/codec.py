"""RocketMQ's classic HA wire format, sans-IO (bytes in, events out; no sockets here).

There is no handshake, magic or version (reference §1.3; big-endian throughout):

* slave -> master: bare 8-byte ``maxPhyOffset`` reports, nothing else. The master reads whatever
  arrived and takes the last complete report (alignment counted from the connection start).
* master -> slave: frames ``{phyOffset:i64, bodySize:i32}`` then ``bodySize`` raw commit-log bytes
  starting at ``phyOffset``; ``bodySize`` 0 is a heartbeat ("the next byte you get is here").
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

REPORT = struct.Struct(">q")
FRAME_HEADER = struct.Struct(">qi")
#: the largest body a slave takes (RocketMQ's slave read buffer is 4 MiB)
MAX_FRAME_BODY = 4 * 1024 * 1024


class HaProtocolError(Exception):
    """Bytes that are no HA protocol: the connection must be closed."""


def encode_report(max_offset: int) -> bytes:
    return REPORT.pack(max_offset)


def encode_frame_header(phy_offset: int, body_size: int) -> bytes:
    return FRAME_HEADER.pack(phy_offset, body_size)


class ReportDecoder:
    """The master's side: feed what arrived, get the newest complete report (or None)."""

    __slots__ = ("_partial",)

    def __init__(self) -> None:
        self._partial = b""

    def feed(self, data: bytes) -> int | None:
        buf = self._partial + data if self._partial else data
        whole = len(buf) - len(buf) % REPORT.size
        self._partial = bytes(buf[whole:])
        if not whole:
            return None
        (offset,) = REPORT.unpack_from(buf, whole - REPORT.size)
        if offset < 0:
            raise HaProtocolError(f"negative offset report {offset}")
        return int(offset)


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    body: bytes

    @property
    def heartbeat(self) -> bool:
        return not self.body


class FrameDecoder:
    """The slave's side: feed what arrived, get the complete frames."""

    __slots__ = ("_buf", "max_body")

    def __init__(self, max_body: int = MAX_FRAME_BODY) -> None:
        self._buf = bytearray()
        self.max_body = max_body

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        buf = self._buf
        frames: list[Frame] = []
        pos = 0
        while len(buf) - pos >= FRAME_HEADER.size:
            offset, size = FRAME_HEADER.unpack_from(buf, pos)
            if size < 0 or size > self.max_body or offset < 0:
                raise HaProtocolError(f"frame header offset={offset} bodySize={size}")
            end = pos + FRAME_HEADER.size + size
            if end > len(buf):
                break
            frames.append(Frame(offset, bytes(buf[pos + FRAME_HEADER.size : end])))
            pos = end
        if pos:
            del buf[:pos]
        return frames
