"""A fixed-size file mapped into memory, named by the global offset of its first byte.

Writes go into the mapping (the page cache), so they survive a kill -9 of the process as soon as
they are made; ``flush`` (fdatasync) makes them survive a power loss too. A new file is sparse:
its size is reserved with ftruncate, not written.
"""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

_ZEROS = bytes(1 << 20)


def file_name(offset: int) -> str:
    """RocketMQ's naming: the start offset, zero-padded to 20 digits."""
    return f"{offset:020d}"


class MappedFile:
    """One segment: ``start`` is the global offset of byte 0, ``size`` is fixed."""

    __slots__ = ("_dirty", "fd", "mm", "path", "size", "start", "view")

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.start = int(path.name)
        exists = path.exists()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if not exists or os.fstat(self.fd).st_size != size:
            os.ftruncate(self.fd, size)
        self.size = size
        self.mm = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.mm)
        self._dirty = False

    @property
    def end(self) -> int:
        return self.start + self.size

    def write(self, pos: int, data: bytes | bytearray | memoryview) -> None:
        """Write at a position relative to the file start."""
        self.view[pos : pos + len(data)] = data
        self._dirty = True

    def flush(self) -> None:
        """Make everything written so far durable (safe to call from a worker thread)."""
        if self._dirty:
            self._dirty = False
            os.fdatasync(self.fd)

    def zero_from(self, pos: int) -> None:
        """Erase from ``pos`` to the end (a torn tail after a crash).

        Only what is not zero already is written: past the tail the file is mostly a hole, and
        writing zeros over it would allocate the whole segment on disk at every start.
        """
        for start, end in self._data_ranges(pos):
            while start < end:
                n = min(end - start, len(_ZEROS))
                if self.view[start : start + n] != _ZEROS[:n]:
                    self.view[start : start + n] = _ZEROS[:n]
                    self._dirty = True
                start += n

    def _data_ranges(self, pos: int) -> list[tuple[int, int]]:
        """The parts of ``[pos, size)`` that are not holes (all of it where SEEK_DATA is missing)."""
        ranges: list[tuple[int, int]] = []
        try:
            while pos < self.size:
                try:
                    data = os.lseek(self.fd, pos, os.SEEK_DATA)
                except OSError as exc:
                    if exc.errno == errno.ENXIO:  # nothing but a hole from pos on
                        break
                    raise
                if data >= self.size:
                    break
                hole = min(os.lseek(self.fd, data, os.SEEK_HOLE), self.size)
                ranges.append((data, hole))
                pos = hole
        except (AttributeError, OSError):
            return [(pos, self.size)] if not ranges else [*ranges, (pos, self.size)]
        return ranges

    def close(self) -> None:
        try:
            self.view.release()
            self.mm.close()
        except BufferError:
            pass  # a reader still holds a slice; the mapping goes when the last one does
        os.close(self.fd)

    def destroy(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    def touch(self) -> None:
        """Record 'last written now' in the mtime, which retention reads."""
        os.utime(self.fd)


class MappedFileQueue:
    """A directory of equal-size MappedFiles forming one contiguous address space."""

    def __init__(self, directory: Path, file_size: int) -> None:
        self.directory = directory
        self.file_size = file_size
        directory.mkdir(parents=True, exist_ok=True)
        self.files: list[MappedFile] = []
        for path in sorted(directory.iterdir()):
            if path.name.isdigit() and len(path.name) == 20:
                self.files.append(MappedFile(path, file_size))

    @property
    def min_offset(self) -> int:
        return self.files[0].start if self.files else 0

    def file_for(self, offset: int) -> MappedFile | None:
        """The file holding global ``offset`` (files are contiguous, so this is arithmetic)."""
        files = self.files
        if not files:
            return None
        idx = (offset - files[0].start) // self.file_size
        if 0 <= idx < len(files):
            f = files[idx]
            if f.start <= offset < f.end:
                return f
        return None

    def create(self, start: int) -> MappedFile:
        f = MappedFile(self.directory / file_name(start), self.file_size)
        self.files.append(f)
        return f

    def file_for_write(self, offset: int) -> MappedFile:
        """The file that holds ``offset``, created if it is the next one (files never skip)."""
        f = self.file_for(offset)
        if f is None:
            f = self.create(offset - offset % self.file_size)
        return f

    def truncate_from(self, offset: int) -> None:
        """Drop everything at and after global ``offset``: later files go, the holder is zeroed."""
        keep = []
        for f in self.files:
            if f.start >= offset:
                f.destroy()
                continue
            if offset < f.end:
                f.zero_from(offset - f.start)
            keep.append(f)
        self.files = keep

    def delete_first(self) -> MappedFile:
        f = self.files.pop(0)
        f.destroy()
        return f

    def flush(self) -> None:
        for f in self.files:
            f.flush()

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files = []
