"""GetTelemetrySubscriptions (key 71), version 0: no client metrics are wanted (KIP-714).

Java clients (3.7+) ask every broker advertising this API for metrics subscriptions; answering with none
(empty requested_metrics) makes them push nothing, and keeps them from logging the API's absence. A
client without an instance id (the zero UUID) is given a fresh one, as Kafka does.
Any client may call it (Kafka checks no ACL). Leaves out: subscriptions (client-metrics configs).
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.topic_ids import ZERO

#: the one (empty) subscription's id; PushTelemetry names it
SUBSCRIPTION_ID = 1
#: Kafka's interval when no subscription matches, and telemetry.max.bytes' default
PUSH_INTERVAL = datetime.timedelta(minutes=5)
TELEMETRY_MAX_BYTES = 1024 * 1024


@api(71, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    instance = request.client_instance_id
    if instance is None or instance == ZERO:
        instance = uuid.uuid4()
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "client_instance_id": instance,
            "subscription_id": SUBSCRIPTION_ID,
            "accepted_compression_types": (),
            "push_interval": PUSH_INTERVAL,
            "telemetry_max_bytes": TELEMETRY_MAX_BYTES,
            "delta_temporality": True,
            "requested_metrics": (),
        },
    )
