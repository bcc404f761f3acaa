"""ShareGroupHeartbeat (key 76), version 1 (Kafka 4.2's; v0 was 4.0's early access): KIP-932 share groups.

A member joins with epoch 0, its own member id and the topics it subscribes to, heartbeats with
the epoch it was given, and leaves with -1 (its acquired records are released at once). Every
member is assigned every partition of its topics (share partitions are shared; group/share_group.py).
Errors as Kafka answers them: INVALID_REQUEST (no member id, no topics on joining),
UNKNOWN_MEMBER_ID, FENCED_MEMBER_EPOCH, NOT_COORDINATOR, GROUP_ID_NOT_FOUND for a group id a
classic or consumer group uses, UNSUPPORTED_VERSION while share groups are off.
With an authorizer: READ on the group (else GROUP_AUTHORIZATION_FAILED), DESCRIBE on each subscribed
topic (else TOPIC_AUTHORIZATION_FAILED).
Leaves out: racks (accepted, not used), regex subscriptions (the share consumer has none).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, share_delivery
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api11_join_group import client_host
from ferrymq.gateway.kafka.apis.api68_consumer_group_heartbeat import _error, _response
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import respond
from ferrymq.gateway.kafka.sasl import now_ms


@api(76, 1, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    frontend = ctx.frontend
    broker = frontend.broker
    if not broker.config.kafka_share_groups_enable:
        return respond(request, _error(ErrorCode.unsupported_version, "Share groups are not enabled."))
    group_id = request.group_id
    if not authz.group(ctx, Operation.READ, group_id):
        return respond(request, _error(ErrorCode.group_authorization_failed))
    names = request.subscribed_topic_names
    if names and not all(authz.topic(ctx, Operation.DESCRIBE, n) for n in names):
        return respond(request, _error(ErrorCode.topic_authorization_failed))
    if not request.member_id:
        return respond(request, _error(ErrorCode.invalid_request, "MemberId can't be empty."))
    if not await frontend.coordinator.serves(group_id):
        return respond(request, _error(ErrorCode.not_coordinator))
    coordinator = frontend.coordinator
    if coordinator.groups.get(group_id) is not None or coordinator.consumers.get(group_id) is not None:
        return respond(
            request, _error(ErrorCode.group_id_not_found, f"Group {group_id} is not a share group.")
        )
    shares = frontend.share_groups
    group = shares.groups.get(group_id)
    member = group.members.get(request.member_id) if group is not None else None
    topics = tuple(names) if names is not None else (member.topics if member is not None else ())
    cluster = frontend.cluster
    await cluster.placements(dict.fromkeys(topics, -1))
    counts = {t: cluster.partition_count(t) for t in topics}
    result, released = shares.heartbeat(
        group_id,
        request.member_id,
        request.member_epoch,
        tuple(names) if names is not None else None,
        counts,
        now_ms(),
        client_id=ctx.conn.client_id or "",
        client_host=client_host(ctx),
        rack_id=request.rack_id,
    )
    share_delivery.release(broker, group_id, released)
    if result.error == ErrorCode.none and request.member_epoch == 0:
        share_delivery.ensure_pop_group(broker, group_id)
    return respond(request, _response(result, cluster.cluster_id))
