"""QUERY_ASSIGNMENT (400) and SET_MESSAGE_REQUEST_MODE (401): broker-side rebalancing and the
switch that turns a group's consumption of a topic into POP.

As the Java broker's ``QueryAssignmentProcessor``: a Java 5.x push consumer with
``clientRebalance=false`` asks which queues are its own (body ``QueryAssignmentRequestBody``:
topic, consumerGroup, clientId, strategyName, messageModel) and gets
``{"messageQueueAssignments": [{"messageQueue": {...}, "mode": "PULL"|"POP", "attachments": {}}]}``.
The mode is what SET_MESSAGE_REQUEST_MODE (``mqadmin setConsumeMode``) stored for the topic and
group (retry topics are always PULL), else ``defaultMessageRequestMode``. PULL assigns the
queues averagely over the group's live members (broadcasting: all to each); POP gives every member
every queue (``popShareQueueNum`` is stored and echoed, not used: any member pops any queue).
Left out: strategies other than averagely, and queues of other brokers (the assignment lists this
broker's queues).
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.topic_config import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import loads_fastjson
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.assignment")
MODES = ("PULL", "POP")


def averagely(queues: list[int], members: list[str], me: str) -> list[int]:
    """``AllocateMessageQueueAveragely``: consecutive blocks, the first ones one larger."""
    if me not in members or not queues:
        return []
    index, n, m = members.index(me), len(queues), len(members)
    mod = n % m
    size = (n // m + 1 if index < mod else n // m) if n > m else 1
    start = index * size if index < mod or n <= m else index * size + mod
    return [queues[(start + i) % n] for i in range(min(size, n - start))] if start < n else []


class AssignmentProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def _body(self, cmd: RemotingCommand, conn: RemotingConnection) -> dict[str, Any] | RemotingCommand:
        try:
            obj = loads_fastjson(bytes(cmd.body or b""))
            if not isinstance(obj, dict) or not isinstance(obj.get("topic"), str):
                raise ValueError("topic is required")
            if not isinstance(obj.get("consumerGroup"), str):
                raise ValueError("consumerGroup is required")
            return obj
        except ValueError as exc:
            log.info(
                "%d from %s refused: %s",
                cmd.code,
                conn.peer,
                exc,
                extra={"peer": conn.peer, "code": cmd.code},
            )
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"bad request body: {exc}")

    def mode_of(self, topic: str, group: str) -> tuple[str, int]:
        if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            return "PULL", 0
        stored = self.broker.pop_modes.get(topic, group)
        if stored is None:
            return self.broker.config.default_message_request_mode, 0
        return str(stored["mode"]), int(stored.get("popShareQueueNum") or 0)

    def query(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        body = self._body(cmd, conn)
        if isinstance(body, RemotingCommand):
            return body
        topic, group = body["topic"], body["consumerGroup"]
        client_id = str(body.get("clientId") or "")
        mode, _share = self.mode_of(topic, group)
        tc = self.broker.topics.get(topic)
        queues = list(range(tc.read_queue_nums)) if tc is not None else []
        info = self.broker.clients.consumer_group(group)
        members = info.client_ids() if info is not None else []
        if client_id and client_id not in members:
            members = sorted([*members, client_id])  # asked before its heartbeat arrived
        if mode == "PULL" and body.get("messageModel") != "BROADCASTING":
            queues = averagely(queues, members, client_id)
        name = self.broker.config.broker_name
        assignments = [
            {
                "messageQueue": {"brokerName": name, "queueId": q, "topic": topic},
                "mode": mode,
                "attachments": {},
            }
            for q in queues
        ]
        return cmd.response(
            ResponseCode.SUCCESS, None, None, json.dumps({"messageQueueAssignments": assignments}).encode()
        )

    def set_mode(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        body = self._body(cmd, conn)
        if isinstance(body, RemotingCommand):
            return body
        topic, group, mode = body["topic"], body["consumerGroup"], body.get("mode")
        if topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            return cmd.response(ResponseCode.NO_PERMISSION, "retry topic is not allowed to set mode")
        if self.broker.topics.get(topic) is None:
            return cmd.response(ResponseCode.TOPIC_NOT_EXIST, f"topic[{topic}] not exist")
        if self.broker.subscription_groups.find(group) is None:
            return cmd.response(
                ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, "subscription group does not exist"
            )
        if mode not in MODES:
            return cmd.response(ResponseCode.INVALID_PARAMETER, f"mode must be one of {', '.join(MODES)}")
        self.broker.pop_modes.set(topic, group, mode, int(body.get("popShareQueueNum") or 0))
        log.info("message request mode of %s@%s set to %s by %s", topic, group, mode, conn.peer)
        return cmd.response(ResponseCode.SUCCESS)
