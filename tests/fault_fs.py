"""A fault-injecting, sync-recording stand-in for core/store/fileio.py; holds no tests itself.

``FaultyDisk.install(monkeypatch)`` replaces the store's durability syscalls:

* ``fail[name] = errno`` makes every call of ``name`` (fdatasync, fsync, fsync_dir, fallocate,
  write) raise that OSError while it is set; ``usage`` fakes ``disk_usage``.
* every successful sync is recorded: a file's bytes at its last fdatasync/fsync (by inode, so a
  rename keeps them) and a directory's entries at its last fsync. ``power_loss(root)`` then
  rewrites the tree under ``root`` to exactly that: what was never synced is gone — unsynced
  bytes, files whose name was never made durable, renames not followed by a directory sync.
  Unlike kill -9, which keeps the page cache, this is what a power cut leaves on disk.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ferrymq.core.store import fileio


class FaultyDisk:
    def __init__(self) -> None:
        self.fail: dict[str, int] = {}
        self.calls: Counter[str] = Counter()
        #: (path, thread name) of every fallocate: preallocation must be off the loop
        self.fallocations: list[tuple[str, str]] = []
        self.usage: Callable[[], tuple[int, int]] | None = None
        self._synced: dict[int, bytes] = {}  # inode -> bytes at its last sync
        self._listings: dict[str, dict[str, tuple[int, bool]]] = {}  # dir -> name -> (inode, is dir)
        self._lock = threading.Lock()
        self._real: dict[str, Any] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FaultyDisk:
        monkeypatch.setattr(fileio, "SPARSE", False)  # conftest.py turns preallocation off
        for name in ("fdatasync", "fsync", "fsync_dir", "fallocate", "write", "disk_usage"):
            self._real[name] = getattr(fileio, name)
            monkeypatch.setattr(fileio, name, getattr(self, name))
        return self

    def _check(self, name: str) -> None:
        self.calls[name] += 1
        code = self.fail.get(name)
        if code is not None:
            raise OSError(code, f"{os.strerror(code)} (injected)")

    def _record_file(self, fd: int) -> None:
        st = os.fstat(fd)
        rfd = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)  # the fd itself may be write-only
        try:
            data = os.pread(rfd, st.st_size, 0)
        finally:
            os.close(rfd)
        with self._lock:
            self._synced[st.st_ino] = data

    def fdatasync(self, fd: int) -> None:
        self._check("fdatasync")
        self._real["fdatasync"](fd)
        self._record_file(fd)

    def fsync(self, fd: int) -> None:
        self._check("fsync")
        self._real["fsync"](fd)
        self._record_file(fd)

    def fsync_dir(self, path: str | os.PathLike[str]) -> None:
        self._check("fsync_dir")
        self._real["fsync_dir"](path)
        listing = {}
        for entry in os.scandir(path):
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # another writer's temporary file, renamed meanwhile
                continue
            listing[entry.name] = (st.st_ino, stat.S_ISDIR(st.st_mode))
        with self._lock:
            self._listings[os.path.realpath(path)] = listing

    def fallocate(self, fd: int, offset: int, length: int) -> None:
        self.fallocations.append((os.readlink(f"/proc/self/fd/{fd}"), threading.current_thread().name))
        self._check("fallocate")
        self._real["fallocate"](fd, offset, length)

    def write(self, fd: int, data: bytes) -> None:
        self._check("write")
        self._real["write"](fd, data)

    def disk_usage(self, path: str | os.PathLike[str]) -> tuple[int, int]:
        if self.usage is not None:
            return self.usage()
        result: tuple[int, int] = self._real["disk_usage"](path)
        return result

    # ---- power loss ----------------------------------------------------------------------------

    def power_loss(self, root: Path) -> dict[str, int]:
        """Rewrite ``root`` to its last synced state (call with every file closed); returns what
        changed: files dropped, files cut back, files restored."""
        keep: dict[Path, bytes | None] = {}  # None: a directory

        def walk(d: Path) -> None:
            for name, (ino, is_dir) in self._listings.get(os.path.realpath(d), {}).items():
                p = d / name
                if is_dir:
                    keep[p] = None
                    walk(p)
                else:
                    keep[p] = self._synced.get(ino, b"")

        walk(root)
        changed: Counter[str] = Counter()
        for dirpath, dirnames, filenames in os.walk(root, topdown=True):
            d = Path(dirpath)
            for name in list(dirnames):
                if d / name not in keep:
                    shutil.rmtree(d / name)
                    dirnames.remove(name)
                    changed["dirs dropped"] += 1
            for name in filenames:
                if d / name not in keep:
                    (d / name).unlink()
                    changed["files dropped"] += 1
        for p, data in sorted(keep.items()):
            if data is None:
                p.mkdir(exist_ok=True)
                continue
            if not p.exists():
                changed["files restored"] += 1
            elif p.read_bytes() != data:
                changed["files cut back"] += 1
            p.write_bytes(data)
        return dict(changed)
