"""Committed consumer offsets per (group, topic, queue), persisted to ``config/consumerOffset.json``.

The same table serves native RocketMQ groups and (later) Kafka groups, so admin views and lag are
one. Format as RocketMQ's ConsumerOffsetManager: ``{"offsetTable": {"topic@group": {"0": 5}}}``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from ferrymq.core.persist import read_json, write_json_atomic

TOPIC_GROUP_SEPARATOR = "@"


class ConsumerOffsetManager:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.table: dict[str, dict[int, int]] = {}
        self._dirty = False
        self._write_lock: asyncio.Lock | None = None
        # snapshots are numbered; a write never replaces a newer one (threads finish in any order)
        self._io_lock = threading.Lock()
        self._snapshots = 0
        self._written = 0
        data = read_json(path)
        if isinstance(data, dict):
            for key, queues in (data.get("offsetTable") or {}).items():
                self.table[key] = {int(q): int(o) for q, o in queues.items()}

    @staticmethod
    def key(group: str, topic: str) -> str:
        return f"{topic}{TOPIC_GROUP_SEPARATOR}{group}"

    def commit(self, group: str, topic: str, queue_id: int, offset: int) -> None:
        self.table.setdefault(self.key(group, topic), {})[queue_id] = offset
        self._dirty = True

    def merge_max(self, table: dict[str, dict[int, int]]) -> int:
        """Take each offset of ``table`` (``topic@group`` -> queue -> offset) that is ahead of ours;
        returns how many moved. Never lowers one: a slave copying a master that came back with
        older offsets keeps what consumers committed to it meanwhile."""
        raised = 0
        for key, queues in table.items():
            ours = self.table.setdefault(key, {})
            for queue_id, offset in queues.items():
                if offset > ours.get(queue_id, -1):
                    ours[queue_id] = offset
                    raised += 1
            if not ours:
                del self.table[key]
        if raised:
            self._dirty = True
        return raised

    def query(self, group: str, topic: str, queue_id: int) -> int | None:
        return self.table.get(self.key(group, topic), {}).get(queue_id)

    def offsets_of(self, group: str, topic: str) -> dict[int, int]:
        return dict(self.table.get(self.key(group, topic), {}))

    def groups(self) -> set[str]:
        return {k.split(TOPIC_GROUP_SEPARATOR, 1)[1] for k in self.table}

    def topics_of_group(self, group: str) -> set[str]:
        out = set()
        for k in self.table:
            topic, _, g = k.partition(TOPIC_GROUP_SEPARATOR)
            if g == group:
                out.add(topic)
        return out

    def delete_group(self, group: str) -> None:
        for k in [k for k in self.table if k.partition(TOPIC_GROUP_SEPARATOR)[2] == group]:
            del self.table[k]
        self._dirty = True

    def delete(self, group: str, topic: str, queue_id: int) -> bool:
        """Forget one committed offset; True if there was one."""
        key = self.key(group, topic)
        queues = self.table.get(key)
        if not queues or queue_id not in queues:
            return False
        del queues[queue_id]
        if not queues:
            del self.table[key]
        self._dirty = True
        return True

    def _snapshot(self) -> tuple[int, dict[str, Any]]:
        self._snapshots += 1
        table = {k: {str(q): o for q, o in v.items()} for k, v in self.table.items()}
        return self._snapshots, {"offsetTable": table}

    def _write(self, seq: int, data: dict[str, Any]) -> None:
        with self._io_lock:
            if seq > self._written:
                write_json_atomic(self.path, data)
                self._written = seq

    def persist(self, force: bool = False) -> None:
        """Write the table if it changed; OSError if that failed (the table stays dirty, so the
        next call writes it again: a failed write is never taken for a written one)."""
        if not (self._dirty or force):
            return
        self._dirty = False
        try:
            self._write(*self._snapshot())
        except OSError:
            self._dirty = True
            raise

    async def persist_durable(self) -> None:
        """Write the table now, off the event loop; concurrent callers share one write.

        For protocols whose commit reply promises durability (Kafka's OffsetCommit); native
        RocketMQ commits keep RocketMQ's periodic flush. OSError if the write failed: the reply
        must then be an error.
        """
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock:
            if not self._dirty:
                return  # a write that started after our commit already covered it
            self._dirty = False
            seq, snapshot = self._snapshot()  # taken on the loop thread: the table is not shared
            try:
                await asyncio.to_thread(self._write, seq, snapshot)
            except OSError:
                self._dirty = True
                raise
