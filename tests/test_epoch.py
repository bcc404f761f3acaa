"""The epoch cache of automatic failover (core/ha/epoch.py): RocketMQ's EpochFileCache rules, its
CheckpointFile format, and the consistent point AutoSwitchHAClient.doTruncate truncates to.

Golden cases come from the reference (§3.5) and from apache/rocketmq's EpochFileCacheTest and
CheckpointFileTest (same inputs, same answers; -1 there is None here)."""

from __future__ import annotations

import errno
import zlib
from pathlib import Path

import pytest

from ferrymq.core.ha.epoch import (
    EpochEntry,
    EpochFile,
    EpochRefused,
    decode_checkpoint,
    encode_checkpoint,
    end_of,
    find_consistent_point,
)
from tests.fault_fs import FaultyDisk
from tests.test_store_support import open_store

E = EpochEntry
BASE = [E(1, 100), E(2, 300), E(3, 500)]  # EpochFileCacheTest's setup


# ---- the file format ------------------------------------------------------------------------------


def test_checkpoint_format_is_rocketmqs() -> None:
    # CheckpointFile's javadoc example: 2 entries, crc32 773307083, then "epoch-startOffset" lines
    data = encode_checkpoint([E(7, 7000), E(8, 8000)])
    assert data == b"2\n773307083\n7-7000\n8-8000\n"
    assert zlib.crc32(b"7-7000\n8-8000\n") & 0x7FFFFFFF == 773307083
    assert decode_checkpoint(data) == [E(7, 7000), E(8, 8000)]
    assert decode_checkpoint(b"2\n0\n7-7000\n8-8000\n") == [E(7, 7000), E(8, 8000)]  # 0: no check
    assert decode_checkpoint(encode_checkpoint([])) == []


@pytest.mark.parametrize(
    "bad",
    [
        b"2\n773307084\n7-7000\n8-8000\n",  # CRC mismatch
        b"3\n773307083\n7-7000\n8-8000\n",  # count mismatch
        b"2\n773307083\n7-7000\n",  # torn
        b"garbage",
        b"",
    ],
)
def test_bad_checkpoint_is_refused(bad: bytes) -> None:
    with pytest.raises(ValueError):
        decode_checkpoint(bad)


def test_epoch_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "epochFileCheckpoint"
    f = EpochFile(path)
    assert f.entries == [] and f.last_epoch == -1
    for e in BASE:
        f.append(e.epoch, e.start)
    assert path.read_bytes() == encode_checkpoint(BASE)
    assert Path(f"{path}.bak").read_bytes() == path.read_bytes()
    again = EpochFile(path)
    assert again.entries == BASE and again.last_epoch == 3
    assert again.end_of(2, 900) == 500 and again.end_of(3, 900) == 900 and again.end_of(4, 900) is None


def test_crc_mismatch_falls_back_to_bak(tmp_path: Path) -> None:
    path = tmp_path / "epochFileCheckpoint"
    f = EpochFile(path)
    for e in BASE:
        f.append(e.epoch, e.start)
    path.write_bytes(path.read_bytes().replace(b"3-500", b"3-501"))  # bit rot: the CRC no longer matches
    assert EpochFile(path).entries == BASE
    path.unlink()  # CheckpointFileTest.testAbNormalWriteAndRead: the main file gone
    assert EpochFile(path).entries == BASE


def test_both_copies_bad_is_an_error_not_an_empty_history(tmp_path: Path) -> None:
    path = tmp_path / "epochFileCheckpoint"
    path.write_bytes(b"1\n5\n1-0\n")
    Path(f"{path}.bak").write_bytes(b"junk")
    with pytest.raises(ValueError, match="epochFileCheckpoint"):
        EpochFile(path)  # an empty history would make this broker look new and skip truncation


def test_lower_epochs_and_starts_are_refused(tmp_path: Path) -> None:
    f = EpochFile(tmp_path / "epochFileCheckpoint")
    f.append(2, 300)
    with pytest.raises(EpochRefused):
        f.append(1, 400)  # lower epoch
    with pytest.raises(EpochRefused):
        f.append(3, 200)  # start below the last
    with pytest.raises(EpochRefused):
        f.append(2, 400)  # the same epoch elsewhere
    f.append(2, 300)  # the same entry again: nothing to do
    f.append(3, 300)  # an epoch in which nothing was written
    with pytest.raises(EpochRefused):
        f.append(-1, 500)
    assert f.entries == [E(2, 300), E(3, 300)]
    assert EpochFile(f.path).entries == f.entries


def test_truncate_from_drops_entries_starting_at_or_after(tmp_path: Path) -> None:
    f = EpochFile(tmp_path / "epochFileCheckpoint")
    for e in BASE:
        f.append(e.epoch, e.start)
    f.truncate_from(150)  # EpochFileCacheTest.testTruncate
    assert f.entries == [E(1, 100)]
    assert f.end_of(1, 120) == 120  # the last one is open-ended again
    assert EpochFile(f.path).entries == [E(1, 100)]
    f.truncate_from(100)
    assert f.entries == [] and EpochFile(f.path).entries == []


def test_a_failed_epoch_file_sync_poisons_like_other_syncs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FaultyDisk().install(monkeypatch)
    store = open_store(tmp_path / "s")
    f = EpochFile.for_store(store)
    assert f.path == tmp_path / "s" / "epochFileCheckpoint"
    f.append(1, 0)
    disk.fail["fsync"] = errno.EIO
    with pytest.raises(OSError):
        f.append(2, 0)
    disk.fail.clear()
    assert f.entries == [E(1, 0)]  # not taken: it is not on disk
    assert not store.writable and store.unwritable_reason and "restart" in store.unwritable_reason
    with pytest.raises(OSError, match="earlier sync"):
        f.append(2, 0)  # never forgotten: the device "recovered", this file does not believe it
    assert EpochFile(f.path).entries == [E(1, 0)]
    store.close()


# ---- the consistent point -------------------------------------------------------------------------


def test_end_of_pure() -> None:
    assert end_of(BASE, 1, 700) == 300
    assert end_of(BASE, 3, 700) == 700
    assert end_of(BASE, 9, 700) is None


@pytest.mark.parametrize(
    ("local", "local_max", "master", "master_max", "point"),
    [
        # EpochFileCacheTest sample 1: epoch 3 began elsewhere on the master; epoch 2 ends at 450 there
        (BASE, 700, [E(1, 100), E(2, 300), E(3, 450)], 600, 450),
        # sample 2: same history, the slave is ahead (a master that lost its role): cut to 600
        (BASE, 700, BASE, 600, 600),
        # sample 3: no epoch with the same start
        (BASE, 700, [E(1, 200), E(2, 500)], 900, None),
        # sample 4 (roles swapped): the master went on in epoch 4
        ([*BASE, E(4, 800)], 900, BASE, 700, 700),
        # the same history, the slave behind: nothing to cut
        (BASE, 650, BASE, 900, 650),
        # the slave behind by whole epochs
        ([E(1, 100), E(2, 300)], 400, [*BASE, E(4, 800)], 900, 400),
        # the diverged last epoch: an old master wrote 5 on in epoch 4, the new master had epoch 5
        ([*BASE, E(4, 800)], 1000, [*BASE, E(5, 800)], 1200, 800),
        # no common epoch at all
        ([E(5, 0)], 100, [E(6, 0)], 100, None),
        # an empty local history: a new replica starts from nothing
        ([], 0, BASE, 900, 0),
        # a crash between store and epoch truncation left an entry past the local end: never past it
        ([*BASE, E(4, 800)], 750, [*BASE, E(4, 800)], 900, 750),
    ],
)
def test_find_consistent_point(
    local: list[EpochEntry], local_max: int, master: list[EpochEntry], master_max: int, point: int | None
) -> None:
    assert find_consistent_point(local, local_max, master, master_max) == point
