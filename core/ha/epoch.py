"""Master epochs (automatic failover): which master wrote which range of the commit log.

Each time the controller elects a master it bumps the epoch; the new master records
``(epoch, its max offset)``. An entry's range ends where the next one starts, the last is
open-ended. Two stores whose histories hold the same epoch *with the same start offset* got
that epoch's bytes from the same master, so they agree up to where the shorter of the two ends:
``find_consistent_point`` finds that offset, and a rejoining old master cuts its log back to it
(``MessageStore.truncate_to``), throwing away what it wrote that the new master never had.

As RocketMQ's ``EpochFileCache`` (and AutoSwitchHAClient.doTruncate), persisted in its
``CheckpointFile`` format as ``storePathRootDir/epochFileCheckpoint`` plus a ``.bak`` copy:
line 1 the entry count, line 2 the CRC32 (masked to 31 bits; 0 = not checked) of the entry
lines, then ``epoch-startOffset`` lines. The functions are pure; ``EpochFile`` adds the file.
"""

from __future__ import annotations

import itertools
import json
import os
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ferrymq.core.store import fileio

if TYPE_CHECKING:
    from ferrymq.core.store import MessageStore

FILE_NAME = "epochFileCheckpoint"
_MAX_EPOCH = 2**31 - 1  # an int32 on the wire (HA handshake) and in RocketMQ


@dataclass(frozen=True, slots=True)
class EpochEntry:
    """The master of ``epoch`` wrote from commit-log offset ``start`` on."""

    epoch: int
    start: int


class EpochRefused(ValueError):
    """An entry that would rewrite history: a lower epoch, or a start below the last one."""


# ---- the file format (pure) ---------------------------------------------------------------------


def encode_checkpoint(entries: Sequence[EpochEntry]) -> bytes:
    lines = "".join(f"{e.epoch}-{e.start}\n" for e in entries).encode()
    return b"%d\n%d\n%s" % (len(entries), zlib.crc32(lines) & 0x7FFFFFFF, lines)


def decode_checkpoint(data: bytes) -> list[EpochEntry]:
    """The entries of a checkpoint file; ValueError if it is torn, garbled or fails its CRC."""
    head, _, rest = data.partition(b"\n")
    crc_line, _, body = rest.partition(b"\n")
    count, crc = int(head), int(crc_line)
    entries = []
    for line in body.splitlines():
        epoch, sep, start = line.partition(b"-")
        if not sep:
            raise ValueError(f"not an epoch entry: {line!r}")
        entries.append(EpochEntry(int(epoch), int(start)))
    if len(entries) != count:
        raise ValueError(f"{count} entries expected, {len(entries)} found")
    if crc and zlib.crc32(body) & 0x7FFFFFFF != crc:
        raise ValueError(f"entries CRC32 {zlib.crc32(body) & 0x7FFFFFFF} is not the recorded {crc}")
    return entries


# ---- history rules (pure) -------------------------------------------------------------------------


def check_append(entries: Sequence[EpochEntry], epoch: int, start: int) -> bool:
    """Whether ``(epoch, start)`` is new (True) or already the last entry (False); EpochRefused
    if it would rewrite history. An epoch may start where the previous one did (a master that
    wrote nothing in its epoch)."""
    if not 0 <= epoch <= _MAX_EPOCH or start < 0:
        raise EpochRefused(f"epoch {epoch} at {start} is out of range")
    if not entries:
        return True
    last = entries[-1]
    if epoch == last.epoch and start == last.start:
        return False
    if epoch <= last.epoch:
        raise EpochRefused(f"epoch {epoch} at {start}: the last epoch is {last.epoch} at {last.start}")
    if start < last.start:
        raise EpochRefused(f"epoch {epoch} starts at {start}, before epoch {last.epoch} at {last.start}")
    return True


def end_of(entries: Sequence[EpochEntry], epoch: int, max_offset: int) -> int | None:
    """Where ``epoch``'s range ends: the next entry's start, ``max_offset`` for the last one;
    None if the history has no such epoch."""
    for i, e in enumerate(entries):
        if e.epoch == epoch:
            return entries[i + 1].start if i + 1 < len(entries) else max_offset
    return None


def find_consistent_point(
    local_entries: Sequence[EpochEntry],
    local_max: int,
    master_entries: Sequence[EpochEntry],
    master_max: int,
) -> int | None:
    """The offset a replica keeps its log up to before it follows a master (doTruncate).

    Walking the local epochs newest first, the first one the master also has with the same
    start offset gives ``min(local end, master end)``. An empty local history is a new replica
    (0); no common epoch is None (the caller retries; nothing can be cut safely). Unlike
    RocketMQ, the point is never past ``local_max``: an entry left past the log's end by a crash
    between the store's and the epoch file's truncation must not make the replica report bytes
    it does not have.
    """
    if not local_entries:
        return 0
    master_start = {e.epoch: e.start for e in master_entries}
    for i in range(len(local_entries) - 1, -1, -1):
        e = local_entries[i]
        if master_start.get(e.epoch) != e.start:
            continue
        local_end = local_entries[i + 1].start if i + 1 < len(local_entries) else local_max
        master_end = end_of(master_entries, e.epoch, master_max)
        assert master_end is not None
        return min(local_end, master_end, local_max)
    return None


def to_adopt(local_entries: Sequence[EpochEntry], master_entries: Sequence[EpochEntry]) -> list[EpochEntry]:
    """The master's entries a replica (its log cut to the consistent point, its entries from
    there dropped) still has to record: those newer than its last epoch, oldest first."""
    last = local_entries[-1].epoch if local_entries else -1
    return [e for e in master_entries if e.epoch > last]


# ---- GET_BROKER_EPOCH_CACHE (1007) body: RocketMQ's EpochEntryCache JSON --------------------------

_OPEN_END = 2**63 - 1  # RocketMQ's endOffset of the last, open-ended entry (Long.MAX_VALUE)


def encode_epoch_cache(
    cluster: str, broker_name: str, broker_id: int, entries: Sequence[EpochEntry], max_offset: int
) -> bytes:
    """``{clusterName, brokerName, brokerId, epochList: [{epoch, startOffset, endOffset}], maxOffset}``"""
    ends = [e.start for e in entries[1:]] + [_OPEN_END]
    epoch_list = [
        {"epoch": e.epoch, "startOffset": e.start, "endOffset": end}
        for e, end in zip(entries, ends, strict=True)
    ]
    body = {
        "brokerId": broker_id,
        "brokerName": broker_name,
        "clusterName": cluster,
        "epochList": epoch_list,
        "maxOffset": max_offset,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def decode_epoch_cache(body: bytes) -> tuple[list[EpochEntry], int]:
    """The entries and max offset of an EpochEntryCache body; ValueError if it is not one."""
    try:
        obj = json.loads(body)
        entries = [EpochEntry(int(e["epoch"]), int(e["startOffset"])) for e in obj["epochList"] or []]
        max_offset = int(obj["maxOffset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an epoch cache: {exc}") from None
    for a, b in itertools.pairwise(entries):
        if b.epoch <= a.epoch or b.start < a.start:
            raise ValueError(f"epoch cache out of order: {a} then {b}")
    return entries, max_offset


# ---- the file -------------------------------------------------------------------------------------


class EpochFile:
    """The epoch history of one store, on disk before it changes in memory.

    Every change rewrites the file and its ``.bak`` copy atomically (temp file, fsync, rename,
    directory fsync) through core/store/fileio.py. A failed sync is never forgotten, as for the
    store's segments: the change is not taken, ``on_sync_failure`` is told (``for_store`` poisons
    the store with it) and every later change raises until a restart.
    """

    def __init__(self, path: Path, on_sync_failure: Callable[[str, OSError], None] | None = None) -> None:
        self.path = path
        self._bak = Path(f"{path}.bak")
        self._on_sync_failure = on_sync_failure
        self._failed: OSError | None = None
        self._entries = self._load()

    @classmethod
    def for_store(cls, store: MessageStore) -> EpochFile:
        """``storePathRootDir/epochFileCheckpoint``; a failed sync poisons ``store``."""
        return cls(store.root / FILE_NAME, store.poison)

    def _load(self) -> list[EpochEntry]:
        """The main file, or the ``.bak`` if the main one is missing, empty or bad (RocketMQ's
        CheckpointFile.read); neither file: a new store. ValueError if both are bad."""
        errors = []
        found: list[EpochEntry] | None = None
        for p in (self.path, self._bak):
            try:
                entries = decode_checkpoint(p.read_bytes())
            except FileNotFoundError:
                continue
            except ValueError as exc:
                errors.append(f"{p}: {exc}")
                continue
            if entries:
                return entries
            found = entries
        if found is None and errors:
            raise ValueError(f"no readable epoch history: {'; '.join(errors)}")
        return []

    @property
    def entries(self) -> list[EpochEntry]:
        return list(self._entries)

    @property
    def last_epoch(self) -> int:
        """The newest epoch, -1 for an empty history (RocketMQ's lastEpoch)."""
        return self._entries[-1].epoch if self._entries else -1

    def end_of(self, epoch: int, max_offset: int) -> int | None:
        return end_of(self._entries, epoch, max_offset)

    def append(self, epoch: int, start: int) -> None:
        """Record that the master of ``epoch`` writes from ``start`` on (a no-op if it is already
        the last entry); EpochRefused for a lower epoch or an earlier start."""
        if check_append(self._entries, epoch, start):
            self._store([*self._entries, EpochEntry(epoch, start)])

    def truncate_from(self, offset: int) -> None:
        """Drop the entries starting at or after ``offset`` (after the log was cut there)."""
        kept = [e for e in self._entries if e.start < offset]
        if len(kept) != len(self._entries):
            self._store(kept)

    def _store(self, entries: list[EpochEntry]) -> None:
        if self._failed is not None:
            raise OSError(self._failed.errno, f"an earlier sync of {self.path} failed: {self._failed}")
        data = encode_checkpoint(entries)
        try:
            for p in (self.path, self._bak):  # main first: a crash in between leaves the new one
                _write_atomic(p, data)
        except OSError as exc:
            self._failed = exc
            if self._on_sync_failure is not None:
                self._on_sync_failure(f"syncing {self.path.name}", exc)
            raise
        self._entries = entries


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fileio.write(fd, data)
        fileio.fsync(fd)
    except OSError:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fileio.fsync_dir(path.parent)
