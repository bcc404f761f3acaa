"""FindCoordinator (key 10), versions 0-4: the coordinator of a group or transactional id.

This broker's Kafka node coordinates every group (and transactional id) it is asked about, as a
single Kafka broker does; v4 answers a batch of keys.
Leaves out: v5-v6 (TRANSACTION_ABORTABLE, share groups), spreading groups over several broker
groups (each broker coordinates what it is asked for; a client asks the bootstrap broker).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.group.build import NO_THROTTLE, respond

GROUP, TRANSACTION = 0, 1


@api(10, 0, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    f = ctx.frontend
    key_type = getattr(request, "key_type", GROUP)
    if key_type in (GROUP, TRANSACTION):
        found = {
            "node_id": f.node_id,
            "host": f.advertised_host,
            "port": f.port,
            "error_code": ErrorCode.none,
        }
        found["error_message"] = None
    else:
        found = {
            "node_id": -1,
            "host": "",
            "port": -1,
            "error_code": ErrorCode.invalid_request,
            "error_message": f"unknown coordinator key type {key_type}",
        }
    if ctx.api_version >= 4:
        coordinators = [{"key": key, **found} for key in request.coordinator_keys]
        return respond(request, {"throttle_time": NO_THROTTLE, "coordinators": coordinators})
    return respond(request, {"throttle_time": NO_THROTTLE, **found})
