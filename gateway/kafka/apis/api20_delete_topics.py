"""DeleteTopics (key 20), versions 1-6 (advertised from 0): by name, or by topic id (v6).

The topic leaves the broker (config, consume queues), the name servers and the Kafka producer
state; its commit-log bytes age out with retention. RocketMQ's system topics cannot be deleted.
With an authorizer, DELETE on the topic (else TOPIC_AUTHORIZATION_FAILED).
Leaves out: waiting for the deletion to reach every broker group (there is one).
"""

from __future__ import annotations

import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.topic_ids import topic_id


@api(20, 1, 6)
async def handle(ctx: RequestContext, request: Any) -> Any:
    f = ctx.frontend
    broker = f.broker
    if ctx.api_version >= 6:
        wanted = [(t.name, t.topic_id) for t in request.topics]
    else:
        wanted = [(name, None) for name in request.topic_names]
    out = []
    for name, tid in wanted:
        if not name and tid is not None and tid != uuid.UUID(int=0):
            name = f.topic_ids.name_in(tid, broker.topics)
            if name is None:
                out.append(
                    _result(None, tid, ErrorCode.unknown_topic_id, "This server does not host this topic ID.")
                )
                continue
        if name and not authz.topic(ctx, Operation.DELETE, name):
            out.append(
                _result(name, tid, ErrorCode.topic_authorization_failed, "Topic authorization failed.")
            )
            continue
        if not name or broker.topics.get(name) is None:
            out.append(
                _result(
                    name, tid, ErrorCode.unknown_topic_or_partition, "This server does not host this topic."
                )
            )
            continue
        if topics.is_internal(broker, name):
            out.append(
                _result(name, tid, ErrorCode.invalid_topic_exception, f"Topic {name} is a system topic.")
            )
            continue
        await f.delete_topic(name)
        out.append(_result(name, topic_id(f.cluster.cluster_id, name), ErrorCode.none, None))
    return respond(request, {"throttle_time": NO_THROTTLE, "responses": out})


def _result(name: str | None, tid: uuid.UUID | None, code: ErrorCode, message: str | None) -> dict[str, Any]:
    return {"name": name, "topic_id": tid or uuid.UUID(int=0), "error_code": code, "error_message": message}
