"""ListGroups (key 16), versions 0-5: every group this coordinator knows.

Kafka groups (protocol type "consumer" for consumers); groups held by native RocketMQ consumers
(state "Stable", protocol type "" as Kafka's simple groups, so Kafka admin tools list them); and
groups that only have committed offsets in the broker's offset store (protocol type "", "Empty").
v4 filters by state, v5 by type (every group here is "classic").
Leaves out: nothing.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(16, 0, 5)
async def handle(ctx: RequestContext, request: Any) -> Any:
    await ctx.frontend.cluster.refresh_peers()
    listed = ctx.frontend.coordinator.list_groups(
        getattr(request, "states_filter", ()) or (), getattr(request, "types_filter", ()) or ()
    )
    groups = [
        {
            "group_id": g.group_id,
            "protocol_type": g.protocol_type,
            "group_state": g.state,
            "group_type": g.group_type,
        }
        for g in listed
    ]
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "groups": groups})
