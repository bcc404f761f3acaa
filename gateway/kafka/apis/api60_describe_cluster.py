"""DescribeCluster (key 60), versions 0-2: the cluster id, controller and brokers.

The controller is this broker's Kafka node; the brokers are this one and every other broker
group whose Kafka listener the name servers know, each with its group's rack (brokerRack).
Leaves out: authorized operations (not computed); no broker is fenced (v2 lists the same
brokers); every endpoint type is answered with the brokers.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

NOT_COMPUTED = -2147483648


@api(60, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    await cluster.refresh_peers()
    brokers = [
        {"broker_id": n.node_id, "host": n.host, "port": n.port, "rack": n.rack, "is_fenced": False}
        for n in cluster.nodes(ctx.conn.listener_port)
    ]
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "error_message": None,
            "endpoint_type": 1,
            "cluster_id": cluster.cluster_id,
            "controller_id": cluster.node_id,
            "brokers": brokers,
            "cluster_authorized_operations": NOT_COMPUTED,
        },
    )
