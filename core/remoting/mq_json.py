"""fastjson's form of a ``Map<MessageQueue, V>``: each key is the queue as a JSON object
(``{{"brokerName":"b","queueId":0,"topic":"T"}:V}``), which RocketMQ's Java side writes and
reads (TopicStatsTable, ConsumeStats, ResetOffsetBody) and standard JSON cannot express."""

from __future__ import annotations

import json
import re
from typing import Any

from ferrymq.core.remoting.route import loads_fastjson

QueueKey = tuple[str, str, int]  # topic, broker name, queue id


def mq_json(topic: str, broker_name: str, queue_id: int) -> dict[str, Any]:
    return {"brokerName": broker_name, "queueId": queue_id, "topic": topic}


def dumps_mq_map(table: dict[QueueKey, Any]) -> str:
    """The JSON text of ``table`` with MessageQueue object keys (values dumped as standard JSON)."""
    parts = [
        json.dumps(mq_json(*key), separators=(",", ":"), sort_keys=True)
        + ":"
        + json.dumps(value, separators=(",", ":"), sort_keys=True)
        for key, value in table.items()
    ]
    return "{" + ",".join(parts) + "}"


def with_mq_map(obj: dict[str, Any], field: str, table: dict[QueueKey, Any]) -> bytes:
    """``obj`` as JSON with ``field`` holding ``table`` in fastjson's object-key form."""
    rest = json.dumps(obj, separators=(",", ":"), sort_keys=True)
    inner = dumps_mq_map(table)
    text = "{" + json.dumps(field) + ":" + inner + ("," + rest[1:] if len(rest) > 2 else "}")
    return text.encode("ascii")


_OBJ_KEY = re.compile(r'\{"brokerName":"((?:[^"\\]|\\.)*)","queueId":(-?\d+),"topic":"((?:[^"\\]|\\.)*)"\}:')


def loads_mq_offsets(data: bytes, field: str = "offsetTable") -> dict[QueueKey, int]:
    """Read a ``{field: {MessageQueue: long}}`` body (ResetOffsetBody) as written by a broker:
    the object keys are turned into strings first so the standard parser accepts them."""
    text = data.decode("utf-8")
    keys: dict[str, QueueKey] = {}

    def _key(m: re.Match[str]) -> str:
        name = f"mq{len(keys)}"
        keys[name] = (json.loads(f'"{m.group(3)}"'), json.loads(f'"{m.group(1)}"'), int(m.group(2)))
        return f'"{name}":'

    obj = loads_fastjson(_OBJ_KEY.sub(_key, text))
    table = obj.get(field) if isinstance(obj, dict) else None
    if not isinstance(table, dict):
        return {}
    return {keys[k]: int(v) for k, v in table.items() if k in keys}
