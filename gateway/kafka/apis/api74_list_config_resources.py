"""ListConfigResources (key 74), versions 0-1: the resources that have configs.

v0 is Kafka 4.0's ListClientMetricsResources: client-metrics resources, of which there are none (empty).
v1 (Kafka 4.1) lists by type: topics (2: the Kafka-listed topics), brokers (4: this broker's node id),
client metrics (16: none); an empty type list means all of them. Other types (groups, 32) are left out.
With an authorizer, DESCRIBE_CONFIGS on the cluster (else CLUSTER_AUTHORIZATION_FAILED), as Kafka.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

TOPIC, BROKER, CLIENT_METRICS = 2, 4, 16


@api(74, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if not authz.cluster(ctx, Operation.DESCRIBE_CONFIGS):
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.cluster_authorization_failed,
                "config_resources": (),
            },
        )
    types = set(getattr(request, "resource_types", ()) or (TOPIC, BROKER, CLIENT_METRICS))
    out: list[dict[str, Any]] = []
    if ctx.api_version >= 1:
        if TOPIC in types:
            out += [
                {"resource_name": tc.topic_name, "resource_type": TOPIC}
                for tc in topics.listed_topics(ctx.frontend.broker)
            ]
        if BROKER in types:
            out.append({"resource_name": str(ctx.frontend.cluster.node_id), "resource_type": BROKER})
    return respond(
        request, {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "config_resources": out}
    )
