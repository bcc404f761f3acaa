"""A fixed-size file mapped into memory, named by the global offset of its first byte.

Writes go into the mapping (the page cache), so they survive a kill -9 of the process as soon as
they are made; ``flush`` (fdatasync) makes them survive a power loss too. A new file is
preallocated (posix_fallocate): a full disk is then an ENOSPC when the file is created, never a
SIGBUS when a page of a sparse mapping finds no block to back it.

A failed fdatasync is never forgotten (fsyncgate): Linux may drop the dirty pages it could not
write and report the error once, so a later sync "succeeds" over lost data. A file whose sync
failed raises on every later flush; the store above refuses writes until a restart.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
from pathlib import Path

from ferrymq.core.store import fileio

_ZEROS = bytes(1 << 20)


def file_name(offset: int) -> str:
    """RocketMQ's naming: the start offset, zero-padded to 20 digits."""
    return f"{offset:020d}"


class MappedFile:
    """One segment: ``start`` is the global offset of byte 0, ``size`` is fixed."""

    __slots__ = ("_dirty", "_failed", "fd", "mm", "path", "size", "start", "view")

    def __init__(self, path: Path, size: int, allocate: bool = True) -> None:
        """Open (or create) the segment; ``allocate`` reserves its blocks (always for a new
        file). OSError (ENOSPC) if the disk has no room: a file this call created is removed."""
        self.path = path
        self.start = int(path.name)
        exists = path.exists()
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not exists or allocate:
                fileio.fallocate(self.fd, 0, size)
            if os.fstat(self.fd).st_size != size:
                os.ftruncate(self.fd, size)
        except OSError:
            os.close(self.fd)
            if not exists:
                path.unlink(missing_ok=True)
            raise
        self.size = size
        self.mm = mmap.mmap(self.fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.mm)
        self._dirty = False
        self._failed: OSError | None = None

    @property
    def end(self) -> int:
        return self.start + self.size

    def write(self, pos: int, data: bytes | bytearray | memoryview) -> None:
        """Write at a position relative to the file start."""
        self.view[pos : pos + len(data)] = data
        self._dirty = True

    def flush(self) -> None:
        """Make everything written so far durable (safe to call from a worker thread).

        The dirty flag is cleared before the sync, so a write racing it is synced next time; if
        the sync fails, this file raises on every later flush (see the module docstring)."""
        if self._failed is not None:
            raise OSError(self._failed.errno, f"an earlier sync of {self.path} failed: {self._failed}")
        if self._dirty:
            self._dirty = False
            try:
                fileio.fdatasync(self.fd)
            except OSError as exc:
                self._failed = exc
                self._dirty = True
                raise

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
        made = []  # directories this queue creates: their names must be synced too
        d = directory
        while not d.exists():
            made.append(d)
            d = d.parent
        directory.mkdir(parents=True, exist_ok=True)
        #: directories whose entries changed since the last flush (synced by ``flush``)
        self._dirs_to_sync = {d.parent for d in made}
        self.files: list[MappedFile] = []
        paths = [p for p in sorted(directory.iterdir()) if p.name.isdigit() and len(p.name) == 20]
        for i, path in enumerate(paths):
            # only the last file is written to: older ones are not (re)allocated
            self.files.append(MappedFile(path, file_size, allocate=i == len(paths) - 1))
        #: a file made ahead of time (``prepare``, in a worker thread), not in ``files`` yet
        self._spare: MappedFile | None = None
        self._create_lock = threading.Lock()

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
        """The file starting at ``start``, appended: the spare if it is the one, else made now."""
        with self._create_lock:
            f, self._spare = self._spare, None
            if f is None or f.start != start:
                if f is not None:
                    f.destroy()
                f = MappedFile(self.directory / file_name(start), self.file_size)
            self._dirs_to_sync.add(self.directory)
        self.files.append(f)
        return f

    def prepare(self, start: int) -> None:
        """Create and allocate the file at ``start`` ahead of need (thread-safe; a worker thread
        calls it so the writer never waits for an allocation). OSError (ENOSPC) if no room."""
        with self._create_lock:
            if self._spare is not None and self._spare.start == start:
                return
            if self._spare is not None:
                self._spare.destroy()
                self._spare = None
            self._spare = MappedFile(self.directory / file_name(start), self.file_size)
            self._dirs_to_sync.add(self.directory)

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
        with self._create_lock:  # a spare made for the old end must not outlive it on disk
            spare = self._spare
            next_start = keep[-1].end if keep else offset - offset % self.file_size
            if spare is not None and spare.start != next_start:
                spare.destroy()
                self._spare = None
        self._dirs_to_sync.add(self.directory)

    def delete_first(self) -> MappedFile:
        f = self.files.pop(0)
        f.destroy()
        self._dirs_to_sync.add(self.directory)
        return f

    def flush(self) -> None:
        """Sync every file, and the directory if files came or went (a new segment's name must
        survive a power loss as much as its bytes)."""
        while self._dirs_to_sync:
            d = self._dirs_to_sync.pop()
            try:
                fileio.fsync_dir(d)
            except OSError:
                self._dirs_to_sync.add(d)
                raise
        for f in self.files:
            f.flush()

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files = []
        with self._create_lock:
            if self._spare is not None:
                self._spare.close()
                self._spare = None
