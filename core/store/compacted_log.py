"""One partition's compacted part: the cleaned entries of a compacted topic, in their own file.

The commit log holds every topic interleaved, so a compacted topic's dead records cannot be removed
from it in place. As RocketMQ 5's compaction topic (CompactionLog beside the commit log), a queue
of a compacted topic gets its own file of entries in the commit log's layout (core/store/entry.py:
batch entries rewritten by the frontend's cleaner, native messages as they were), each keeping its
queue offsets, covering queue offsets below ``end`` (the cleaned point). The store serves offsets
below ``end`` from here and the rest (the dirty head) from the commit log, to every reader
(``MessageStore.entries``, ``entry_for``, ``entries_before``, ``get_messages``).

On disk: ``<store>/compacted/<topic>/<queue>/<end, 20 digits>.log``. A clean writes the new file
as ``.tmp``, fsyncs it, renames it over (one atomic rename: the swap point), fsyncs the directory,
then deletes the older file. A crash before the rename leaves the old file (the ``.tmp`` is removed
at load); after it, the newest file wins. Either the old compacted part or the new, never a mix:
both cover a prefix of the queue that the commit log continues.

Memory stays bounded whatever the part's size: the file is mapped read-only (the page cache holds
it, not the heap) and indexed with three arrays of int64 (each entry's first and next queue offset
and its file position, 24 bytes an entry); an entry is parsed from the mapping when read. A write
streams the survivors to the file one by one. Readers hold views of the mapping, which outlives a
swap (the unlinked file stays mapped until the last view goes), so a swap never invalidates an
entry being served.
"""

from __future__ import annotations

import bisect
import mmap
import os
import struct
from array import array
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ferrymq.core.store import fileio
from ferrymq.core.store.entry import CorruptRecord, StoredEntry, read_entry

SUFFIX = ".log"
_SIZE = struct.Struct(">i")
_WRITE_CHUNK = 1 << 20
TMP = ".tmp"


class CompactedLog:
    """The compacted entries of one queue, covering queue offsets below ``end``."""

    def __init__(self, path: Path, end: int, data: bytes | mmap.mmap) -> None:
        self.path = path
        self.end = end
        self._size = len(data)
        self._view = memoryview(data)
        self._starts = array("q")
        self._nexts = array("q")
        self._pos = array("q")
        view, pos, n = self._view, 0, len(self._view)
        while pos + 8 <= n:  # as iter_entries walks, keeping positions
            (size,) = _SIZE.unpack_from(view, pos)
            if size <= 0 or pos + size > n:
                break
            try:
                entry = read_entry(view, pos)
            except CorruptRecord:
                pos += size
                continue
            self._starts.append(entry.queue_offset)
            self._nexts.append(entry.next_queue_offset)
            self._pos.append(pos)
            pos += size

    @classmethod
    def open(cls, path: Path, end: int) -> CompactedLog:
        """Map the file read-only (an empty file has nothing to map)."""
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            data: bytes | mmap.mmap = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        return cls(path, end, data)

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._starts)

    def read(self, position: int, length: int) -> bytes:
        """Raw bytes of the file (a slave copies the part: slave_sync.py)."""
        return bytes(self._view[position : position + length])

    def _entry(self, i: int) -> StoredEntry:
        return read_entry(self._view, self._pos[i])

    @property
    def first(self) -> int:
        """The first offset it holds (``end`` if it holds none)."""
        return self._starts[0] if self._starts else self.end

    def _index(self, offset: int) -> int:
        """Index of the first entry whose records reach ``offset`` or later."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return 0
        return i if self._nexts[i] > offset else i + 1

    def entries(self, from_offset: int, end_offset: int) -> Iterator[StoredEntry]:
        """Entries holding offsets in [from_offset, min(end_offset, end)), in order."""
        stop = min(end_offset, self.end)
        for i in range(self._index(from_offset), len(self._starts)):
            if self._starts[i] >= stop:
                return
            yield self._entry(i)

    def entries_before(self, end_offset: int, stop_offset: int) -> Iterator[StoredEntry]:
        """Entries holding offsets below ``end_offset`` down to ``stop_offset``, newest first."""
        i = bisect.bisect_left(self._starts, min(end_offset, self.end)) - 1
        while i >= 0 and self._nexts[i] > stop_offset:
            yield self._entry(i)
            i -= 1

    def entry_for(self, offset: int) -> StoredEntry | None:
        """The entry holding ``offset``, None if compaction removed it."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and self._nexts[i] > offset:
            return self._entry(i)
        return None


def queue_dir(root: Path, topic: str, queue_id: int) -> Path:
    return root / topic / str(queue_id)


def load(directory: Path) -> CompactedLog | None:
    """The newest complete compacted file of a queue directory; leftovers of a crash removed."""
    if not directory.is_dir():
        return None
    for tmp in directory.glob("*" + TMP):
        tmp.unlink(missing_ok=True)
    files = sorted(p for p in directory.glob("*" + SUFFIX) if p.stem.isdigit())
    if not files:
        return None
    newest = files[-1]
    for old in files[:-1]:  # a crash after the rename, before the old file's removal
        old.unlink(missing_ok=True)
    return CompactedLog.open(newest, int(newest.stem))


def load_all(root: Path) -> dict[tuple[str, int], CompactedLog]:
    found: dict[tuple[str, int], CompactedLog] = {}
    if not root.is_dir():
        return found
    for topic_dir in sorted(root.iterdir()):
        for qdir in sorted(topic_dir.iterdir()):
            if qdir.name.isdigit():
                log = load(qdir)
                if log is not None:
                    found[(topic_dir.name, int(qdir.name))] = log
    return found


class PartWriter:
    """A new compacted part being written as ``.tmp``: ``append`` bytes, then ``commit`` (fsync,
    the atomic rename, the older files removed) or ``abort``. Blocking file I/O: off the loop."""

    def __init__(self, directory: Path, end: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.end = end
        self.path = directory / f"{end:020d}{SUFFIX}"
        self.tmp = self.path.with_suffix(TMP)
        self.written = 0
        self._fd: int | None = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    def append(self, data: bytes | memoryview) -> None:
        assert self._fd is not None
        fileio.write(self._fd, data)
        self.written += len(data)

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abort(self) -> None:
        self._close()
        self.tmp.unlink(missing_ok=True)

    def commit(self, before_swap: Callable[[Path], None] | None = None) -> CompactedLog:
        assert self._fd is not None
        try:
            fileio.fsync(self._fd)
        finally:
            self._close()
        if before_swap is not None:
            before_swap(self.tmp)
        os.replace(self.tmp, self.path)
        fileio.fsync_dir(self.directory)
        for old in self.directory.glob("*" + SUFFIX):
            if old != self.path:
                old.unlink(missing_ok=True)
        return CompactedLog.open(self.path, self.end)


def write(
    directory: Path,
    end: int,
    entries: Iterable[bytes | memoryview],
    before_swap: Callable[[Path], None] | None = None,
) -> CompactedLog:
    """Write a new compacted part covering offsets below ``end`` and swap it in on disk.

    Blocking file I/O: run it off the event loop. ``before_swap`` (tests) is called with the
    complete temporary file just before the rename, where a crash is most interesting.
    """
    writer = PartWriter(directory, end)
    try:  # streamed in chunks: the survivors are never all in memory
        chunk: list[bytes | memoryview] = []
        pending = 0
        for entry in entries:
            chunk.append(entry)
            pending += len(entry)
            if pending >= _WRITE_CHUNK:
                writer.append(b"".join(chunk))
                chunk, pending = [], 0
        if chunk:
            writer.append(b"".join(chunk))
    except BaseException:
        writer.abort()
        raise
    return writer.commit(before_swap)
