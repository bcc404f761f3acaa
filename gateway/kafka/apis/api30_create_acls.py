"""CreateAcls (key 30), versions 1-3: add ACL bindings, persisted (fsynced) before the answer.

Needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED per creation); SECURITY_DISABLED without an
authorizer; a binding Kafka would not store (ANY or UNKNOWN enums, a principal not "Type:name", a cluster
resource other than the literal "kafka-cluster") is INVALID_REQUEST with the reason. Existing bindings are
not duplicated.
Leaves out: version 0 (removed in Kafka 4.0).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import (
    AclBinding,
    Operation,
    PatternType,
    Permission,
    ResourceType,
    invalid_binding,
)
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api29_describe_acls import refused
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


def _binding(c: Any) -> AclBinding | str:
    try:
        b = AclBinding(
            ResourceType(c.resource_type),
            c.resource_name,
            PatternType(c.resource_pattern_type),
            c.principal,
            c.host,
            Operation(c.operation),
            Permission(c.permission_type),
        )
    except ValueError as exc:
        return str(exc)
    return invalid_binding(b) or b


@api(30, 1, 3)
async def handle(ctx: RequestContext, request: Any) -> Any:
    why = refused(ctx, Operation.ALTER)
    results = []
    new = []
    for c in request.creations:
        b = why or _binding(c)
        if isinstance(b, tuple):
            results.append({"error_code": b[0], "error_message": b[1]})
        elif isinstance(b, str):
            results.append({"error_code": ErrorCode.invalid_request, "error_message": b})
        else:
            new.append(b)
            results.append({"error_code": ErrorCode.none, "error_message": None})
    if new:
        ctx.frontend.broker.security.acls.create(new)
    return respond(request, {"throttle_time": NO_THROTTLE, "results": results})
