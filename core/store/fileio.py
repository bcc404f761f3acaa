"""The few syscalls whose failure decides durability, behind one seam.

The store, its segments and the JSON config writer call these (never ``os`` directly), so a
test can replace them to inject EIO on a sync or ENOSPC on preallocation, or record what was
synced to simulate a power loss. Look them up at call time (``fileio.fdatasync(fd)``), not by
``from ... import``, or a replacement is not seen.
"""

from __future__ import annotations

import errno
import os
import shutil


def fdatasync(fd: int) -> None:
    """Data (and the size) of ``fd`` on stable storage; OSError (EIO) if the device refused."""
    os.fdatasync(fd)


def fsync(fd: int) -> None:
    os.fsync(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the names in a directory durable (a created, renamed or deleted file)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: FERRYMQ_SPARSE_SEGMENTS=1 leaves segments sparse (no full-disk protection): for test suites
#: that open hundreds of stores with 1 GiB segments, which would otherwise each take their size
SPARSE = os.environ.get("FERRYMQ_SPARSE_SEGMENTS") == "1"


def fallocate(fd: int, offset: int, length: int) -> None:
    """Reserve disk blocks for a range, so writing through a mapping can never hit a full disk
    (a page fault with no block to back it is SIGBUS). ENOSPC if there is no room; a
    filesystem without fallocate falls back to ftruncate (sparse: no protection)."""
    if SPARSE:
        if os.fstat(fd).st_size < offset + length:
            os.ftruncate(fd, offset + length)
        return
    try:
        os.posix_fallocate(fd, offset, length)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
        if os.fstat(fd).st_size < offset + length:
            os.ftruncate(fd, offset + length)


def write(fd: int, data: bytes) -> None:
    """Write all of ``data`` (a short write is retried; ENOSPC raises)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def disk_usage(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(total, used) bytes of the filesystem holding ``path``."""
    usage = shutil.disk_usage(path)
    return usage.total, usage.used
