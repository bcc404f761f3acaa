"""Log start offsets moved by DeleteRecords, kept in ``<store>/config/kafkaLogStartOffsets.json``.

The store keeps a queue's min offset in memory (``MessageStore.advance_min_offset``); this file
makes a DeleteRecords survive a restart: the frontend re-applies it at start. retention.ms needs
no file: it is recomputed from timestamps.
"""

from __future__ import annotations

from pathlib import Path

from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.core.store import MessageStore


class LogStartOffsets:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.table: dict[str, dict[int, int]] = {}
        data = read_json(path)
        if isinstance(data, dict):
            for topic, queues in data.items():
                if isinstance(queues, dict):
                    self.table[topic] = {int(q): int(o) for q, o in queues.items()}

    def apply(self, store: MessageStore) -> None:
        for topic, queues in self.table.items():
            for queue_id, offset in queues.items():
                store.advance_min_offset(topic, queue_id, offset)

    def set(self, topic: str, queue_id: int, offset: int) -> None:
        self.table.setdefault(topic, {})[queue_id] = offset
        self._persist()

    def forget_topic(self, topic: str) -> None:
        if self.table.pop(topic, None) is not None:
            self._persist()

    def _persist(self) -> None:
        write_json_atomic(self.path, {t: {str(q): o for q, o in qs.items()} for t, qs in self.table.items()})
