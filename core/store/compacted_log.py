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

The file is read into memory at load and swap (compacted partitions are meant to be small: the
latest value per key); readers hold views of an immutable bytes object, so a swap never
invalidates an entry being served.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ferrymq.core.store import fileio
from ferrymq.core.store.entry import StoredEntry, iter_entries

SUFFIX = ".log"
TMP = ".tmp"


class CompactedLog:
    """The compacted entries of one queue, covering queue offsets below ``end``."""

    def __init__(self, path: Path, end: int, data: bytes) -> None:
        self.path = path
        self.end = end
        self.data = data
        self._entries = list(iter_entries(data))
        self._starts = [e.queue_offset for e in self._entries]

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def first(self) -> int:
        """The first offset it holds (``end`` if it holds none)."""
        return self._starts[0] if self._entries else self.end

    def _index(self, offset: int) -> int:
        """Index of the first entry whose records reach ``offset`` or later."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return 0
        return i if self._entries[i].next_queue_offset > offset else i + 1

    def entries(self, from_offset: int, end_offset: int) -> Iterator[StoredEntry]:
        """Entries holding offsets in [from_offset, min(end_offset, end)), in order."""
        stop = min(end_offset, self.end)
        entries = self._entries
        for i in range(self._index(from_offset), len(entries)):
            entry = entries[i]
            if entry.queue_offset >= stop:
                return
            yield entry

    def entries_before(self, end_offset: int, stop_offset: int) -> Iterator[StoredEntry]:
        """Entries holding offsets below ``end_offset`` down to ``stop_offset``, newest first."""
        i = bisect.bisect_left(self._starts, min(end_offset, self.end)) - 1
        while i >= 0 and self._entries[i].next_queue_offset > stop_offset:
            yield self._entries[i]
            i -= 1

    def entry_for(self, offset: int) -> StoredEntry | None:
        """The entry holding ``offset``, None if compaction removed it."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and self._entries[i].next_queue_offset > offset:
            return self._entries[i]
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
    return CompactedLog(newest, int(newest.stem), newest.read_bytes())


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
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{end:020d}{SUFFIX}"
    tmp = path.with_suffix(TMP)
    data = b"".join(entries)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fileio.write(fd, data)
        fileio.fsync(fd)
    finally:
        os.close(fd)
    if before_swap is not None:
        before_swap(tmp)
    os.replace(tmp, path)
    fileio.fsync_dir(directory)
    for old in directory.glob("*" + SUFFIX):
        if old != path:
            old.unlink(missing_ok=True)
    return CompactedLog(path, end, data)
