"""Small JSON config files written atomically (temp file, fsync, rename, directory fsync).

A failed write or sync raises and leaves the previous file in place; each attempt writes a
whole new file, so retrying after a failure is safe (unlike syncing the same pages again)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ferrymq.core.store import fileio

log = logging.getLogger("ferrymq.persist")


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer: two threads writing the same file never share a temp file
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        fileio.fsync(fh.fileno())
    os.replace(tmp, path)
    fileio.fsync_dir(path.parent)  # the rename itself must survive a power loss


def read_json(path: Path) -> Any:
    """The file's JSON, or None if it does not exist (a half-written .tmp is ignored)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


class BackgroundJsonWriter:
    """One JSON file kept up to date off the event loop, bursts of changes coalesced.

    Each :meth:`changed` numbers a change; a task writes the newest state (``snapshot()``, taken on
    the loop) in a worker thread, so a burst of changes costs one or two writes of the file, not one
    each. Writes are numbered too: a slower thread with an older snapshot never replaces a newer
    file. :meth:`wait` is for callers whose reply promises durability. A failed write is logged,
    fails its waiters and is retried while changes are outstanding.
    """

    def __init__(self, path: Path, snapshot: Callable[[], Any], retry_s: float = 1.0) -> None:
        self.path = path
        self._snapshot = snapshot
        self._retry_s = retry_s
        self._changes = 0  # number of the newest change
        self._durable = 0  # every change up to this number is on disk
        self._on_disk = 0  # the number of the snapshot in the file (worker side, under _io_lock)
        self._io_lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def pending(self) -> bool:
        return self._durable < self._changes

    def changed(self) -> int:
        """Record a change and schedule its write; returns its number (for :meth:`wait`).

        With no running event loop (start-up, tools) the file is written at once.
        """
        self._changes += 1
        if self._task is None or self._task.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.write_now()
                return self._changes
            self._task = loop.create_task(self._run(), name=f"write-{self.path.name}")
        return self._changes

    async def wait(self, change: int | None = None) -> None:
        """Until change ``change`` (default: the newest) is on disk; raises the write's error if it failed."""
        change = self._changes if change is None else change
        if self._durable >= change:
            return
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((change, fut))
        await fut

    def write_now(self) -> None:
        """Write the current state synchronously (at start and at shutdown)."""
        if self._task is not None:
            self._task.cancel()  # a write in its thread still finishes; ours is numbered higher
            self._task = None
        change = self._changes
        self._write(change, self._snapshot())
        self._done(change, None)

    def _write(self, change: int, data: Any) -> None:
        with self._io_lock:
            if change > self._on_disk:
                write_json_atomic(self.path, data)
                self._on_disk = change

    def _done(self, change: int, error: Exception | None) -> None:
        if error is None:
            self._durable = max(self._durable, change)
        keep = []
        for want, fut in self._waiters:
            if fut.done():
                continue
            if want > change:
                keep.append((want, fut))  # a later write covers it
            elif error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(None)
        self._waiters = keep

    async def _run(self) -> None:
        while self._durable < self._changes:
            change = self._changes
            data = self._snapshot()  # on the loop: the state is not shared with the thread
            try:
                await asyncio.to_thread(self._write, change, data)
            except Exception as exc:  # a full or failing disk; the waiters learn it, we try again
                log.error("cannot write %s (retrying in %.0f s): %s", self.path, self._retry_s, exc)
                self._done(change, exc)
                await asyncio.sleep(self._retry_s)
                continue
            self._done(change, None)
