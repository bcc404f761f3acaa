"""The key index: message keys and unique keys to commit-log offsets.

RocketMQ's IndexFile layout (``store/.../index/IndexFile.java``): a 40-byte header
(beginTimestamp, endTimestamp, beginPhyOffset, endPhyOffset, hashSlotCount, indexCount), then
``slots`` 4-byte slot heads, then 20-byte entries (keyHash, phyOffset, timeDiffSeconds,
prevIndex) chained per slot. Keys are ``topic#key``. The hash is CRC-32 (cheap in Python) rather
than Java's String.hashCode; the file is ferrymq's own and never read by Java tools. A lookup
returns candidate offsets; the caller checks the message really carries the key.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from ferrymq.core.store import fileio
from ferrymq.core.store.mapped_file import MappedFile

HEADER = struct.Struct(">qqqqii")
ENTRY = struct.Struct(">iqii")
SLOT = struct.Struct(">i")


def key_hash(key: str) -> int:
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


class IndexFile:
    """One index file; full when ``index_count`` reaches ``max_entries``."""

    def __init__(self, path: Path, slots: int, max_entries: int) -> None:
        self.slots = slots
        self.max_entries = max_entries
        self.file = MappedFile(path, HEADER.size + slots * SLOT.size + max_entries * ENTRY.size)
        (
            self.begin_timestamp,
            self.end_timestamp,
            self.begin_phy_offset,
            self.end_phy_offset,
            _,
            self.index_count,
        ) = HEADER.unpack_from(self.file.view, 0)
        if self.index_count == 0:
            self.index_count = 1  # entry 0 is "no previous entry"
            self.end_phy_offset = -1

    @property
    def is_full(self) -> bool:
        return self.index_count >= self.max_entries

    def _write_header(self) -> None:
        self.file.write(
            0,
            HEADER.pack(
                self.begin_timestamp,
                self.end_timestamp,
                self.begin_phy_offset,
                self.end_phy_offset,
                self.slots,
                self.index_count,
            ),
        )

    def put(self, key: str, phy_offset: int, store_timestamp: int) -> bool:
        if self.is_full:
            return False
        h = key_hash(key)
        slot_pos = HEADER.size + (h % self.slots) * SLOT.size
        (prev,) = SLOT.unpack_from(self.file.view, slot_pos)
        if self.index_count == 1:
            self.begin_timestamp = store_timestamp
            self.begin_phy_offset = phy_offset
        diff = max(0, (store_timestamp - self.begin_timestamp) // 1000)
        entry_pos = HEADER.size + self.slots * SLOT.size + self.index_count * ENTRY.size
        self.file.write(entry_pos, ENTRY.pack(h, phy_offset, diff, prev))
        self.file.write(slot_pos, SLOT.pack(self.index_count))
        self.index_count += 1
        self.end_timestamp = store_timestamp
        self.end_phy_offset = phy_offset
        self._write_header()
        return True

    def lookup(self, key: str, max_num: int, begin_ms: int, end_ms: int) -> list[int]:
        """Commit-log offsets of entries with ``key``'s hash stored in [begin_ms, end_ms]."""
        out: list[int] = []
        h = key_hash(key)
        (idx,) = SLOT.unpack_from(self.file.view, HEADER.size + (h % self.slots) * SLOT.size)
        base = HEADER.size + self.slots * SLOT.size
        seen = 0
        while 0 < idx < self.index_count and len(out) < max_num and seen < self.max_entries:
            eh, phy, diff, prev = ENTRY.unpack_from(self.file.view, base + idx * ENTRY.size)
            ts = self.begin_timestamp + diff * 1000
            if eh == h and begin_ms - 1000 <= ts <= end_ms:
                out.append(phy)
            if prev >= idx:  # a chain only points backwards; anything else is garbage
                break
            idx = prev
            seen += 1
        return out

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    def destroy(self) -> None:
        self.file.destroy()


class IndexService:
    """The index files in time order; new entries go to the last one."""

    def __init__(self, directory: Path, slots: int, max_entries: int) -> None:
        self.directory = directory
        self.slots = slots
        self.max_entries = max_entries
        directory.mkdir(parents=True, exist_ok=True)
        self.files = [
            IndexFile(p, slots, max_entries) for p in sorted(directory.iterdir()) if p.name.isdigit()
        ]
        #: a file came or went since the directory was last synced (its name must survive a
        #: power loss as much as its bytes)
        self._dir_dirty = False

    @property
    def end_phy_offset(self) -> int:
        return self.files[-1].end_phy_offset if self.files else -1

    def put(self, topic: str, keys: list[str], uniq_key: str | None, phy: int, ts: int) -> None:
        if not keys and not uniq_key:
            return
        if phy <= self.end_phy_offset:
            return  # already indexed (re-dispatch after a crash)
        f = self.files[-1] if self.files else None
        wanted = len(keys) + (1 if uniq_key else 0)
        if f is None or f.index_count + wanted > f.max_entries:
            # named by the first entry's time, but never reusing a name: files can fill up within
            # one millisecond, and opening the full one again would drop the entries
            name = ts if f is None else max(ts, int(f.file.path.name) + 1)
            while (self.directory / f"{name:020d}").exists():
                name += 1
            f = IndexFile(self.directory / f"{name:020d}", self.slots, self.max_entries)
            self.files.append(f)
            self._dir_dirty = True
        if uniq_key:
            f.put(f"{topic}#{uniq_key}", phy, ts)
        for key in keys:
            f.put(f"{topic}#{key}", phy, ts)

    def forget_from(self, phy: int) -> None:
        """The commit log was cut at ``phy`` (a torn tail): entries at or past it are stale.

        They stay in their chains (queries check each candidate against the message really at
        that offset), but new entries for offsets from ``phy`` on must not be taken as already
        indexed.
        """
        for f in self.files:
            if f.end_phy_offset >= phy:
                f.end_phy_offset = phy - 1

    def lookup(self, topic: str, key: str, max_num: int, begin_ms: int, end_ms: int) -> list[int]:
        out: list[int] = []
        for f in reversed(self.files):
            if f.index_count <= 1 or f.end_timestamp < begin_ms - 1000 or f.begin_timestamp > end_ms:
                continue
            out.extend(f.lookup(f"{topic}#{key}", max_num - len(out), begin_ms, end_ms))
            if len(out) >= max_num:
                break
        return out

    def delete_before(self, min_phy: int) -> None:
        """Retention: drop whole files that only point at deleted commit-log segments."""
        while len(self.files) > 1 and self.files[0].end_phy_offset < min_phy:
            self.files.pop(0).destroy()
            self._dir_dirty = True

    def flush(self) -> None:
        for f in self.files[-2:]:
            f.flush()
        if self._dir_dirty:
            self._dir_dirty = False
            try:
                fileio.fsync_dir(self.directory)
            except OSError:
                self._dir_dirty = True
                raise

    def close(self) -> None:
        for f in self.files:
            f.close()
