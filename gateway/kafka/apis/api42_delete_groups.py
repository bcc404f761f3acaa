"""DeleteGroups (key 42), versions 0-2: delete groups without members, with their offsets.

NON_EMPTY_GROUP while a group has Kafka members or live native RocketMQ consumers,
GROUP_ID_NOT_FOUND for a group neither has nor ever committed offsets. The offsets go from the
offset store of every broker group (the others also drop the group's subscription config, as
mqadmin deleteSubGroup does), so a native group's offsets can be deleted this way too;
COORDINATOR_NOT_AVAILABLE (retriable) while a broker group cannot be reached.
With an authorizer, DELETE on each group (else GROUP_AUTHORIZATION_FAILED for it), as Kafka.
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


@api(42, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.frontend.coordinator
    results = []
    for g in request.groups_names:
        if not authz.group(ctx, Operation.DELETE, g):
            error = ErrorCode.group_authorization_failed
        elif await coordinator.serves(g):
            error = await coordinator.delete_group(g)
        else:
            error = ErrorCode.not_coordinator
        results.append({"group_id": g, "error_code": error})
    return respond(request, {"throttle_time": NO_THROTTLE, "results": results})
