"""Message body compression as RocketMQ 5 flags it (sans-IO; cramjam's codecs, and python-lz4 to
write LZ4 frames Java can read).

A compressed body has sysFlag COMPRESSED (0x1) and its codec in bits 8-10
(``MessageSysFlag.COMPRESSION_TYPE_COMPARATOR``): 1 LZ4 (an LZ4 *frame*, as Java's
``LZ4FrameOutputStream`` writes), 2 ZSTD (a zstd frame), 3 ZLIB; 0 is zlib too (clients before
RocketMQ 5 set no codec bits). Leaves out: compressing batches (RocketMQ never does either).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import cramjam

from ferrymq.core.remoting.message import SYSFLAG_COMPRESSED

#: sysFlag bits naming the codec (``COMPRESSION_TYPE_COMPARATOR``)
CODEC_MASK = 0x7 << 8
CODEC_BITS = {"LZ4": 1 << 8, "ZSTD": 2 << 8, "ZLIB": 3 << 8}


def _zlib(body: bytes, level: int) -> bytes:
    return zlib.compress(body, level)


def _lz4(body: bytes, level: int) -> bytes:
    """An LZ4 frame of independent blocks: Java's LZ4FrameInputStream refuses linked blocks,
    which is all cramjam writes. Java's LZ4 compressor ignores the level too."""
    import lz4.frame  # only producers choosing LZ4 pay for the import

    return bytes(lz4.frame.compress(body, block_linked=False))


def _zstd(body: bytes, level: int) -> bytes:
    return bytes(cramjam.zstd.compress(body, level=level))


_COMPRESS: dict[str, Callable[[bytes, int], bytes]] = {"ZLIB": _zlib, "LZ4": _lz4, "ZSTD": _zstd}
_INFLATE: dict[int, tuple[str, Callable[[bytes], bytes]]] = {
    0: ("ZLIB", zlib.decompress),
    CODEC_BITS["ZLIB"]: ("ZLIB", zlib.decompress),
    CODEC_BITS["LZ4"]: ("LZ4", lambda b: bytes(cramjam.lz4.decompress(b))),
    CODEC_BITS["ZSTD"]: ("ZSTD", lambda b: bytes(cramjam.zstd.decompress(b))),
}


def compress(body: bytes, codec: str, level: int) -> tuple[bytes, int]:
    """``body`` compressed with ``codec`` (ZLIB, LZ4, ZSTD) and the sysFlag bits that say so."""
    return _COMPRESS[codec](body, level), SYSFLAG_COMPRESSED | CODEC_BITS[codec]


def inflate(body: bytes, sys_flag: int) -> bytes:
    """The original of a compressed body; ValueError (naming the codec) if it does not inflate
    or the codec is unknown."""
    found = _INFLATE.get(sys_flag & CODEC_MASK)
    if found is None:
        raise ValueError(f"unknown compression type {(sys_flag & CODEC_MASK) >> 8}")
    name, fn = found
    try:
        return fn(body)
    except (zlib.error, cramjam.DecompressionError) as exc:
        raise ValueError(f"{name} body does not inflate: {exc}") from None
