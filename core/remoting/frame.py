"""Framing: ``int32 length | int32 (serializeType << 24 | headerLen) | header | body``.

``FrameDecoder`` is a sans-IO state machine: feed it whatever bytes arrived and it returns the
complete commands, keeping any partial frame for the next call. A frame larger than the limit,
or a header that cannot be decoded, raises ``FrameError``; the caller closes the connection, as
Netty's LengthFieldBasedFrameDecoder does in the Java broker.
"""

from __future__ import annotations

import struct

from ferrymq.core.remoting.command import HeaderError, RemotingCommand, decode_header

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
_PREFIX = struct.Struct(">ii")


class FrameError(ValueError):
    """The byte stream is not a valid remoting stream; the connection must be closed.

    ``commands`` holds the well-formed frames that came before the garbage in the same feed:
    a server answers those first, as Netty's decoder passes them on before the exception.
    """

    def __init__(
        self, message: str, commands: list[RemotingCommand] | None = None, too_big: bool = False
    ) -> None:
        super().__init__(message)
        self.commands = commands or []
        #: the length prefix is past the limit (not malformed bytes): a metric tells them apart
        self.too_big = too_big


class FrameDecoder:
    """Turns a byte stream into RemotingCommands."""

    __slots__ = ("_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> list[RemotingCommand]:
        buf = self._buf
        buf += data
        out: list[RemotingCommand] = []
        pos = 0
        n = len(buf)
        while n - pos >= 4:
            (length,) = struct.unpack_from(">i", buf, pos)
            # Netty's LengthFieldBasedFrameDecoder counts the 4-byte length field in the limit
            if length < 4 or length + 4 > self.max_frame:
                raise FrameError(
                    f"frame length {length} outside 4..{self.max_frame - 4}", out, too_big=length >= 4
                )
            if n - pos - 4 < length:
                break
            (ser_hdr,) = struct.unpack_from(">i", buf, pos + 4)
            ser_type = (ser_hdr >> 24) & 0xFF
            header_len = ser_hdr & 0xFFFFFF
            if header_len > length - 4:
                raise FrameError(f"header length {header_len} exceeds frame length {length}", out)
            hstart = pos + 8
            bstart = hstart + header_len
            end = pos + 4 + length
            try:
                cmd = decode_header(ser_type, bytes(buf[hstart:bstart]))
            except HeaderError as exc:
                raise FrameError(str(exc), out) from None
            cmd.body = bytes(buf[bstart:end])
            out.append(cmd)
            pos = end
        if pos:
            del buf[:pos]
        return out


def encode_frame(cmd: RemotingCommand) -> list[bytes | bytearray | memoryview]:
    """The frame as buffers for ``transport.writelines``: the body is never copied."""
    header = cmd.encode_header()
    body = cmd.body
    prefix = _PREFIX.pack(4 + len(header) + len(body), (int(cmd.serialize_type) << 24) | len(header))
    if body:
        return [prefix + header, body]
    return [prefix + header]


def encode_frame_bytes(cmd: RemotingCommand) -> bytes:
    """The frame as one bytes object (tests and small messages)."""
    return b"".join(encode_frame(cmd))
