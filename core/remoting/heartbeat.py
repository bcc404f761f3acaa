"""The HEART_BEAT body (RocketMQ's ``HeartbeatData``): written by clients, read by the broker.

A heartbeat names the client and the producer and consumer groups it runs; a consumer group
carries how it consumes and its subscriptions. ferrymq clients always send the full data
(``heartbeatFingerprint`` 0, ``withoutSub`` false); heartbeat v2 fingerprints are not used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.remoting.subscription import SubscriptionData


@dataclass(slots=True)
class ConsumerData:
    """One consumer group of the client (``ConsumerData``)."""

    group_name: str
    consume_type: str = "CONSUME_PASSIVELY"
    message_model: str = "CLUSTERING"
    consume_from_where: str = "CONSUME_FROM_LAST_OFFSET"
    subscriptions: list[SubscriptionData] = field(default_factory=list)
    unit_mode: bool = False

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ConsumerData:
        """Raises KeyError without ``groupName``; missing settings take Java's defaults."""
        return cls(
            group_name=str(obj["groupName"]),
            consume_type=str(obj.get("consumeType") or "CONSUME_PASSIVELY"),
            message_model=str(obj.get("messageModel") or "CLUSTERING"),
            consume_from_where=str(obj.get("consumeFromWhere") or "CONSUME_FROM_LAST_OFFSET"),
            subscriptions=[SubscriptionData.from_json(s) for s in obj.get("subscriptionDataSet") or []],
            unit_mode=bool(obj.get("unitMode")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "consumeFromWhere": self.consume_from_where,
            "consumeType": self.consume_type,
            "groupName": self.group_name,
            "messageModel": self.message_model,
            "subscriptionDataSet": [s.to_json() for s in self.subscriptions],
            "unitMode": self.unit_mode,
        }


@dataclass(slots=True)
class HeartbeatData:
    """A client's heartbeat: its id, producer group names and consumer groups."""

    client_id: str
    producer_groups: list[str] = field(default_factory=list)
    consumers: list[ConsumerData] = field(default_factory=list)

    @classmethod
    def decode(cls, body: bytes | bytearray | memoryview) -> HeartbeatData:
        """Parse a request body; ValueError, KeyError or TypeError for one that is malformed."""
        data = json.loads(bytes(body) or b"{}")
        if not isinstance(data, dict):
            raise ValueError("not an object")
        client_id = str(data.get("clientID") or "")
        if not client_id:
            raise ValueError("clientID missing")
        return cls(
            client_id,
            [str(p["groupName"]) for p in data.get("producerDataSet") or []],
            [ConsumerData.from_json(c) for c in data.get("consumerDataSet") or []],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "clientID": self.client_id,
            "consumerDataSet": [c.to_json() for c in self.consumers],
            "heartbeatFingerprint": 0,
            "producerDataSet": [{"groupName": g} for g in self.producer_groups],
            "withoutSub": False,
        }

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), separators=(",", ":")).encode()
