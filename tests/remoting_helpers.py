"""Raw remoting requests for integration tests that must not depend on ferrymq's client."""

from __future__ import annotations

import time

import orjson

from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import MessageExt, decode_stored_messages, properties_to_string
from ferrymq.core.remoting.transport import RemotingConnection


def send_v2(
    topic: str, body: bytes, queue_id: int, properties: dict[str, str] | None = None, queue_nums: int = 4
) -> RemotingCommand:
    return RemotingCommand(
        code=RequestCode.SEND_MESSAGE_V2,
        ext_fields={
            "a": "test-producer",
            "b": topic,
            "c": "TBW102",
            "d": str(queue_nums),
            "e": str(queue_id),
            "f": "0",
            "g": str(int(time.time() * 1000)),
            "h": "0",
            "i": properties_to_string(properties or {}),
        },
        body=body,
    )


def pull(
    topic: str, queue_id: int, offset: int, max_nums: int = 32, expression: str = "*", suspend_ms: int = 0
) -> RemotingCommand:
    return RemotingCommand(
        code=RequestCode.PULL_MESSAGE,
        ext_fields={
            "consumerGroup": "test-group",
            "topic": topic,
            "queueId": str(queue_id),
            "queueOffset": str(offset),
            "maxMsgNums": str(max_nums),
            "sysFlag": str(4 | (2 if suspend_ms else 0)),
            "commitOffset": "0",
            "suspendTimeoutMillis": str(suspend_ms),
            "subscription": expression,
            "subVersion": "0",
            "expressionType": "TAG",
        },
    )


async def pull_all(conn: RemotingConnection, topic: str, queue_ids: range) -> list[MessageExt]:
    """Every message of the given queues, from offset 0 to the end."""
    out: list[MessageExt] = []
    for qid in queue_ids:
        offset = 0
        while True:
            resp = await conn.invoke(pull(topic, qid, offset), timeout=10)
            if resp.code != ResponseCode.SUCCESS:
                break
            out.extend(decode_stored_messages(resp.body))
            offset = int(resp.ext_fields["nextBeginOffset"])
    return out


def heartbeat(client_id: str, group: str, topic: str, expression: str = "*") -> RemotingCommand:
    """HEART_BEAT of one clustering push consumer subscribed to ``topic``."""
    body = {
        "clientID": client_id,
        "producerDataSet": [],
        "consumerDataSet": [
            {
                "groupName": group,
                "consumeType": "CONSUME_PASSIVELY",
                "messageModel": "CLUSTERING",
                "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
                "subscriptionDataSet": [{"topic": topic, "subString": expression, "subVersion": 1}],
            }
        ],
    }
    return RemotingCommand(code=RequestCode.HEART_BEAT, body=orjson.dumps(body))
