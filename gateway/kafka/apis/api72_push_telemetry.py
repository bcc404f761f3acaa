"""PushTelemetry (key 72), version 0: a client's metrics, accepted and dropped (KIP-714).

No metrics are requested (api71), so a client pushes only when it terminates; that push is accepted.
A push without a client instance id is INVALID_REQUEST, one naming another subscription than ours
UNKNOWN_SUBSCRIPTION_ID (the client then asks for subscriptions again), as Kafka's ClientMetricsManager.
Leaves out: keeping or exporting the metrics.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api71_get_telemetry_subscriptions import SUBSCRIPTION_ID
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.topic_ids import ZERO


@api(72, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if request.client_instance_id is None or request.client_instance_id == ZERO:
        error = ErrorCode.invalid_request
    elif request.subscription_id != SUBSCRIPTION_ID:
        error = ErrorCode.unknown_subscription_id
    else:
        error = ErrorCode.none
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": error})
