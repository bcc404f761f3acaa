"""POP state on disk: a snapshot (``config/pop/popState.json``, written atomically) and a journal
of the ops since (``config/pop/popState.journal``, one JSON line ``[seq, op]`` each).

Every op is written to the journal before the request it belongs to is answered, with one
``write`` (the page cache survives a kill -9, as the commit log's mapped pages do); with
``popJournalSync`` the journal is also fdatasync'ed then, which survives a power loss. RocketMQ
writes CK/ACK records to its revive topic for the same reason. At start the snapshot is loaded and
the journal's ops with a higher sequence replayed (a torn last line is skipped); past
``compact_after`` ops, and at stop, the snapshot is rewritten and the journal emptied.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from ferrymq.core.broker.pop.state import Op, PopState
from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.core.store import fileio

log = logging.getLogger("ferrymq.pop")


class PopJournal:
    def __init__(self, directory: Path, sync: bool = False, compact_after: int = 10_000) -> None:
        self.dir = directory
        self.snapshot_path = directory / "popState.json"
        self.journal_path = directory / "popState.journal"
        self.sync = sync
        self.compact_after = compact_after
        self.seq = 0
        self._ops_since = 0
        self._fd: int | None = None

    def load(self) -> PopState:
        """The state as last written; afterwards every op the state makes goes to the journal."""
        self.dir.mkdir(parents=True, exist_ok=True)
        data = read_json(self.snapshot_path)
        state = PopState.restore(data["state"]) if isinstance(data, dict) else PopState()
        self.seq = int(data["seq"]) if isinstance(data, dict) else 0
        if self.journal_path.exists():
            with self.journal_path.open("rb") as fh:
                for n, line in enumerate(fh):
                    try:
                        seq, op = json.loads(line)
                    except ValueError:
                        log.warning("pop journal %s: line %d torn, ignored", self.journal_path, n + 1)
                        break
                    if seq > self.seq:
                        state.apply(op)
                        self.seq = seq
                        self._ops_since += 1
        self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        state.sink = self.append
        self._state = state
        if self._ops_since >= self.compact_after:
            self.compact()
        return state

    def append(self, op: Op) -> None:
        assert self._fd is not None
        self.seq += 1
        fileio.write(self._fd, json.dumps([self.seq, op], separators=(",", ":")).encode() + b"\n")
        if self.sync:
            fileio.fdatasync(self._fd)
        self._ops_since += 1

    def maybe_compact(self) -> None:
        if self._ops_since >= self.compact_after:
            self.compact()

    def compact(self) -> None:
        """Snapshot the state, then empty the journal (a crash between leaves ops the snapshot's
        sequence already covers, which load skips)."""
        write_json_atomic(self.snapshot_path, {"seq": self.seq, "state": self._state.snapshot()})
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        self._ops_since = 0

    def close(self) -> None:
        if self._fd is not None:
            self.compact()
            os.close(self._fd)
            self._fd = None
