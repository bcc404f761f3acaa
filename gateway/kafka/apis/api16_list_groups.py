"""ListGroups (key 16), versions 0-5: every group this coordinator knows.

Kafka groups (protocol type "consumer" for consumers); groups held by native RocketMQ consumers
(state "Stable", protocol type "" as Kafka's simple groups, so Kafka admin tools list them); and
groups that only have committed offsets in the broker's offset store (protocol type "", "Empty").
v4 filters by state, v5 by type (every group here is "classic").
With an authorizer, DESCRIBE on the cluster lists every group, else only the groups the principal may
DESCRIBE (the rest are hidden, never refused), as Kafka.
Leaves out: nothing.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(16, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    await ctx.frontend.cluster.refresh_peers()
    listed = ctx.frontend.coordinator.list_groups(
        getattr(request, "states_filter", ()) or (), getattr(request, "types_filter", ()) or ()
    )
    every = authz.cluster(ctx, Operation.DESCRIBE)
    groups = [
        {
            "group_id": g.group_id,
            "protocol_type": g.protocol_type,
            "group_state": g.state,
            "group_type": g.group_type,
        }
        for g in listed
        if every or authz.group(ctx, Operation.DESCRIBE, g.group_id)
    ]
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "groups": groups})
