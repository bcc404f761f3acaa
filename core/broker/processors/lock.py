"""LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): queue locks for orderly consumers.

Bodies as the Java client sends them (``LockBatchRequestBody`` / ``UnlockBatchRequestBody``):
``{"consumerGroup", "clientId", "onlyThisBroker", "mqSet": [{"topic", "brokerName", "queueId"}]}``;
LOCK_BATCH_MQ answers ``{"lockOKMQSet": [...]}`` with the queues the client now holds. Locks are
taken on this broker only (the Java broker's default, lockInStrictMode=false). A body that is
not such JSON gets SYSTEM_ERROR and is logged with the peer.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.rebalance_lock import QueueKey
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import loads_fastjson
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.locks")


def _parse(body: bytes | bytearray | memoryview) -> tuple[str, str, list[QueueKey]]:
    obj = loads_fastjson(bytes(body))
    if not isinstance(obj, dict):
        raise ValueError("the body is not a JSON object")
    group = obj.get("consumerGroup")
    client_id = obj.get("clientId")
    if not isinstance(group, str) or not group or not isinstance(client_id, str) or not client_id:
        raise ValueError("consumerGroup and clientId are required")
    mqs: list[QueueKey] = []
    for mq in obj.get("mqSet") or []:
        if not isinstance(mq, dict):
            raise ValueError("mqSet holds a non-object")
        mqs.append((str(mq["topic"]), str(mq["brokerName"]), int(mq["queueId"])))
    return group, client_id, mqs


def _mq_json(mq: QueueKey) -> dict[str, Any]:
    return {"brokerName": mq[1], "queueId": mq[2], "topic": mq[0]}


class LockProcessor:
    def __init__(self, broker: Broker) -> None:
        self.locks = broker.locks

    def lock(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            group, client_id, mqs = _parse(cmd.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bad LOCK_BATCH_MQ body from %s: %s", conn.peer, exc)
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"bad lock request body: {exc}")
        held = self.locks.try_lock_batch(group, mqs, client_id)
        body = json.dumps({"lockOKMQSet": [_mq_json(mq) for mq in held]}).encode()
        return cmd.response(ResponseCode.SUCCESS, body=body)

    def unlock(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            group, client_id, mqs = _parse(cmd.body)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("bad UNLOCK_BATCH_MQ body from %s: %s", conn.peer, exc)
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"bad unlock request body: {exc}")
        self.locks.unlock_batch(group, mqs, client_id)
        return cmd.response(ResponseCode.SUCCESS)
