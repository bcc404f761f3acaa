"""DeleteGroups (key 42), versions 0-2: delete groups without members, with their offsets.

NON_EMPTY_GROUP while a group has Kafka members or live native RocketMQ consumers,
GROUP_ID_NOT_FOUND for a group neither has nor ever committed offsets. The offsets go from the
offset store of every broker group (the others also drop the group's subscription config, as
mqadmin deleteSubGroup does), so a native group's offsets can be deleted this way too;
COORDINATOR_NOT_AVAILABLE (retriable) while a broker group cannot be reached.
Leaves out: nothing.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(42, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    coordinator = ctx.frontend.coordinator
    results = []
    for g in request.groups_names:
        error = (
            await coordinator.delete_group(g) if await coordinator.serves(g) else ErrorCode.not_coordinator
        )
        results.append({"group_id": g, "error_code": error})
    return respond(request, {"throttle_time": NO_THROTTLE, "results": results})
