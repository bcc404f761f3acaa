"""ListPartitionReassignments (key 46), version 0: none is ever in progress (api45: replicas do not move).

The answer is an empty list, for named partitions and for all alike, as Kafka answers when no
reassignment is ongoing.
With an authorizer, DESCRIBE on the cluster (else CLUSTER_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(46, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    allowed = authz.cluster(ctx, Operation.DESCRIBE)
    error = ErrorCode.none if allowed else ErrorCode.cluster_authorization_failed
    return respond(
        request, {"throttle_time": NO_THROTTLE, "error_code": error, "error_message": None, "topics": ()}
    )
