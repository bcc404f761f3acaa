"""AlterConfigs (key 33), versions 0-2: replace a topic's configs (the pre-KIP-339 API that
kafka-python's admin ``alter_configs`` uses). Same checks as IncrementalAlterConfigs; configs
not named go back to their defaults. Broker configs are read-only here.
"""

from __future__ import annotations

from typing import Any

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api44_incremental_alter_configs import SET, apply
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(33, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    out = []
    for res in request.resources:
        ops = [(c.name, SET, c.value) for c in res.configs]
        error, message = apply(
            ctx, res.resource_type, res.resource_name, ops, request.validate_only, replace=True
        )
        out.append(
            {
                "error_code": error,
                "error_message": message,
                "resource_type": res.resource_type,
                "resource_name": res.resource_name,
            }
        )
    return respond(request, {"throttle_time": NO_THROTTLE, "responses": out})
