"""ConsumerGroupHeartbeat (key 68), versions 0-1: KIP-848 consumer groups.

A member joins (epoch 0), heartbeats, acknowledges revocations through the partitions it says it
owns, and leaves (epoch -1, or -2 for a static member coming back); the coordinator answers its
member epoch and, when it changed, its assignment (topic ids as Metadata gives them). The state
machine is group/consumer_group.py; group/coordinator.py keeps one group id in one protocol.
Errors as Kafka answers them: INVALID_REQUEST, UNSUPPORTED_ASSIGNOR, INVALID_REGULAR_EXPRESSION,
UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, FENCED_INSTANCE_ID, UNRELEASED_INSTANCE_ID,
GROUP_ID_NOT_FOUND (a classic group with members), NOT_COORDINATOR.
With an authorizer: READ on the group (else GROUP_AUTHORIZATION_FAILED), DESCRIBE on each
subscribed topic name (else TOPIC_AUTHORIZATION_FAILED); a regex matches only topics the member may
DESCRIBE. v0 lets the coordinator name a member that has no id; v1 requires the client's own.
Leaves out: racks (accepted, not used), v0's client-side assignors.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api03_metadata import topic_id
from ferrymq.gateway.kafka.apis.api11_join_group import client_host
from ferrymq.gateway.kafka.cluster import ClusterView
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.assignors import Assignment
from ferrymq.gateway.kafka.group.consumer_group import HeartbeatRequest, HeartbeatResult
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


class ClusterCatalog:
    """The broker's topics as the consumer group state machine asks for them."""

    def __init__(self, ctx: RequestContext) -> None:
        self.ctx = ctx
        self.cluster: ClusterView = ctx.frontend.cluster

    def partition_count(self, topic: str) -> int:
        return self.cluster.partition_count(topic)

    def partition_racks(self, topic: str) -> list[frozenset[str]]:
        return self.cluster.partition_racks(topic)

    def topic_names(self) -> Iterable[str]:
        return [
            tc.topic_name
            for tc in topics.listed_topics(self.ctx.frontend.broker)
            if authz.topic(self.ctx, Operation.DESCRIBE, tc.topic_name)
        ]


def _error(error: ErrorCode, message: str | None = None) -> dict[str, Any]:
    return {
        "throttle_time": NO_THROTTLE,
        "error_code": error,
        "error_message": message,
        "member_id": None,
        "member_epoch": -1,
        "heartbeat_interval": datetime.timedelta(0),
        "assignment": None,
    }


@api(68, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.frontend.coordinator
    cluster = ctx.frontend.cluster
    group_id = request.group_id
    if not authz.group(ctx, Operation.READ, group_id):
        return respond(request, _error(ErrorCode.group_authorization_failed))
    names = request.subscribed_topic_names
    if names and not all(authz.topic(ctx, Operation.DESCRIBE, n) for n in names):
        return respond(request, _error(ErrorCode.topic_authorization_failed))
    if ctx.api_version >= 1 and not request.member_id:
        return respond(request, _error(ErrorCode.invalid_request, "MemberId can't be empty."))
    if not await coordinator.serves(group_id):
        return respond(request, _error(ErrorCode.not_coordinator))
    group = coordinator.consumers.get(group_id)
    known = set(names or ()) | (set(group.subscribed_topics()) if group is not None else set())
    await cluster.placements(dict.fromkeys(known, -1))
    owned: Assignment | None = None
    if request.topic_partitions is not None:
        by_id = {topic_id(cluster.cluster_id, n): n for n in known}
        owned = {}
        for tp in request.topic_partitions:
            name = by_id.get(tp.topic_id)
            if name is not None and tp.partitions:
                owned[name] = frozenset(tp.partitions)
    timeout = request.rebalance_timeout
    req = HeartbeatRequest(
        group_id=group_id,
        member_id=request.member_id,
        member_epoch=request.member_epoch,
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=int(timeout.total_seconds() * 1000) if timeout is not None else -1,
        subscribed_topic_names=tuple(names) if names is not None else None,
        subscribed_topic_regex=getattr(request, "subscribed_topic_regex", None),
        server_assignor=request.server_assignor,
        owned=owned,
        client_id=ctx.conn.client_id or "",
        client_host=client_host(ctx),
    )
    result = coordinator.consumer_heartbeat(req, ClusterCatalog(ctx), ctx.conn.peer)
    return respond(request, _response(result, cluster.cluster_id))


def _response(result: HeartbeatResult, cluster_id: str) -> dict[str, Any]:
    if result.error != ErrorCode.none:
        return _error(result.error, result.message)
    assignment = None
    if result.assignment is not None:
        assignment = {
            "topic_partitions": [
                {"topic_id": topic_id(cluster_id, t), "partitions": sorted(ps)}
                for t, ps in sorted(result.assignment.items())
            ]
        }
    return {
        "throttle_time": NO_THROTTLE,
        "error_code": ErrorCode.none,
        "error_message": None,
        "member_id": result.member_id,
        "member_epoch": result.member_epoch,
        "heartbeat_interval": datetime.timedelta(milliseconds=result.heartbeat_interval_ms),
        "assignment": assignment,
    }
