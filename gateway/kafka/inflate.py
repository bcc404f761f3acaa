"""Decompression of a batch's records that never inflates past a limit (no compression bombs).

A 1 MB batch may claim, or really hold, gigabytes once decompressed (gzip reaches ~1000:1, zstd's
RLE blocks 32000:1, a snappy header simply states a length of 4 GiB). Each codec is bounded before
anything is allocated for its output: gzip is inflated in steps with zlib's ``max_length``; raw
snappy states its length up front; an lz4 or zstd frame is walked block header by block header
(a block never holds more than the frame's maximum block size), so the bound costs a few header
reads per block and the data is then decompressed in one call. Errors are ValueError, which
records.py turns into CorruptBatch.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable

import cramjam

_LE32 = struct.Struct("<I")
LZ4_MAGIC = 0x184D2204
ZSTD_MAGIC = 0xFD2FB528
_LZ4_BLOCK_MAX = {4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20}
_ZSTD_BLOCK_MAX = 128 << 10
_STEP = 1 << 20


class TooLarge(ValueError):
    """The records would decompress past the limit."""


def gunzip(data: bytes | memoryview, limit: int) -> bytes:
    """gzip members back to back (as gzip.decompress reads them), at most ``limit`` bytes out.

    gzip states no size, so it is inflated in 1 MiB steps: a bomb costs ``limit`` bytes at most."""
    out: list[bytes] = []
    total = 0
    rest = bytes(data)
    while rest:
        d = zlib.decompressobj(wbits=31)
        while rest and not d.eof:
            chunk = d.decompress(rest, _STEP)
            total += len(chunk)
            if total > limit:
                raise TooLarge(f"gzip records inflate past {limit} bytes")
            out.append(chunk)
            rest = d.unconsumed_tail
        if not d.eof:
            raise ValueError("gzip member ends early")
        rest = d.unused_data
    return b"".join(out)


def snappy_raw(data: bytes | memoryview, limit: int) -> bytes:
    """A raw snappy block; its stated length is checked before it is allocated."""
    size = cramjam.snappy.decompress_raw_len(data)
    if size > limit:
        raise TooLarge(f"snappy block states {size} bytes (limit {limit})")
    return bytes(cramjam.snappy.decompress_raw(data))


def lz4_frames(data: bytes | memoryview, limit: int) -> bytes:
    """lz4 frames: decompressed once their blocks cannot exceed ``limit``."""
    _check(_lz4_bound(bytes(data)), limit, "lz4")
    return bytes(cramjam.lz4.decompress(data))


def zstd_frames(data: bytes | memoryview, limit: int) -> bytes:
    """zstd frames: decompressed once their blocks cannot exceed ``limit``."""
    _check(_zstd_bound(bytes(data)), limit, "zstd")
    return bytes(cramjam.zstd.decompress(data))


def _check(bound: int, limit: int, codec: str) -> None:
    if bound > limit:
        raise TooLarge(f"{codec} records may inflate to {bound} bytes (limit {limit})")


def _u32(buf: bytes, pos: int) -> int:
    if pos + 4 > len(buf):
        raise ValueError("frame ends early")
    return int(_LE32.unpack_from(buf, pos)[0])


def _frames_bound(buf: bytes, magic: int, frame: Callable[[bytes, int], tuple[int, int]]) -> int:
    """Sum the bounds of the frames back to back in ``buf`` (skippable frames skipped);
    ``frame(buf, pos)`` reads the frame whose magic is at ``pos``: (its end, its bound)."""
    bound, pos, n = 0, 0, len(buf)
    while pos < n:
        found = _u32(buf, pos)
        if 0x184D2A50 <= found <= 0x184D2A5F:  # skippable frame
            pos += 8 + _u32(buf, pos + 4)
            continue
        if found != magic:
            raise ValueError(f"magic {found:#x} is not {magic:#x}")
        pos, frame_bound = frame(buf, pos)
        bound += frame_bound
    return bound


def _lz4_bound(buf: bytes) -> int:
    """The most the lz4 frames in ``buf`` can decompress to: blocks x the frames' block size."""
    return _frames_bound(buf, LZ4_MAGIC, _lz4_frame)


def _lz4_frame(buf: bytes, pos: int) -> tuple[int, int]:
    if pos + 7 > len(buf):
        raise ValueError("lz4 frame header ends early")
    flg, bd = buf[pos + 4], buf[pos + 5]
    block_max = _LZ4_BLOCK_MAX.get((bd >> 4) & 7)
    if block_max is None:
        raise ValueError("bad lz4 block size")
    pos += 7 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0)  # content size, dict id, HC
    block_checksum = 4 if flg & 0x10 else 0
    bound = 0
    while True:
        size = _u32(buf, pos)
        pos += 4
        if size == 0:  # end mark
            break
        pos += (size & 0x7FFFFFFF) + block_checksum
        bound += block_max
    return pos + (4 if flg & 0x04 else 0), bound  # content checksum


def _zstd_bound(buf: bytes) -> int:
    """The most the zstd frames in ``buf`` can decompress to: blocks x 128 KiB (an RLE block
    states its own size)."""
    return _frames_bound(buf, ZSTD_MAGIC, _zstd_frame)


def _zstd_frame(buf: bytes, pos: int) -> tuple[int, int]:
    n = len(buf)
    if pos + 5 > n:
        raise ValueError("zstd frame header ends early")
    fhd = buf[pos + 4]
    fcs_code, single, checksum, dict_code = fhd >> 6, fhd & 0x20, fhd & 0x04, fhd & 0x03
    fcs = (1 if single else 0, 2, 4, 8)[fcs_code]
    pos += 5 + (0 if single else 1) + (0, 1, 2, 4)[dict_code] + fcs
    bound = 0
    while True:
        if pos + 3 > n:
            raise ValueError("zstd block header ends early")
        header = buf[pos] | buf[pos + 1] << 8 | buf[pos + 2] << 16
        last, kind, size = header & 1, (header >> 1) & 3, header >> 3
        pos += 3
        if kind == 1:  # RLE: one byte, repeated ``size`` times
            bound += size
            pos += 1
        elif kind == 3:
            raise ValueError("reserved zstd block type")
        else:
            bound += size if kind == 0 else _ZSTD_BLOCK_MAX
            pos += size
        if last:
            return pos + (4 if checksum else 0), bound
