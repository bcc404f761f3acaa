"""Which groups consume a topic by POP (RocketMQ's ``MessageRequestModeManager``): set with
SET_MESSAGE_REQUEST_MODE (what ``mqadmin setConsumeMode`` sends), read by QUERY_ASSIGNMENT, kept
in ``config/messageRequestMode.json`` as ``{"topic@group": {"topic", "consumerGroup", "mode",
"popShareQueueNum"}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ferrymq.core.persist import read_json, write_json_atomic


class RequestModes:
    def __init__(self, path: Path) -> None:
        self.path = path
        data = read_json(path)
        self.table: dict[str, dict[str, Any]] = data if isinstance(data, dict) else {}

    def get(self, topic: str, group: str) -> dict[str, Any] | None:
        return self.table.get(f"{topic}@{group}")

    def set(self, topic: str, group: str, mode: str, share: int) -> None:
        self.table[f"{topic}@{group}"] = {
            "topic": topic,
            "consumerGroup": group,
            "mode": mode,
            "popShareQueueNum": share,
        }
        write_json_atomic(self.path, self.table)
