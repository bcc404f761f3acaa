"""DeleteAcls (key 31), versions 1-3: remove the bindings each filter matches, persisted before the answer.

Needs ALTER on the cluster; SECURITY_DISABLED without an authorizer; each filter's result lists the bindings
it removed. Filters use Kafka's matching (ANY and null match anything, MATCH covers literal, wildcard and
prefixed bindings of a name).
Leaves out: version 0 (removed in Kafka 4.0).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import AclFilter, Operation
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api29_describe_acls import acl_filter, refused
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(31, 1, 3)
async def handle(ctx: RequestContext, request: Any) -> Any:
    why = refused(ctx, Operation.ALTER)
    if why is not None:
        results = [
            {"error_code": why[0], "error_message": why[1], "matching_acls": ()} for _ in request.filters
        ]
        return respond(request, {"throttle_time": NO_THROTTLE, "filter_results": results})
    filters: list[AclFilter | None] = []
    for f in request.filters:
        try:
            filters.append(acl_filter(f))
        except ValueError:
            filters.append(None)
    removed = ctx.frontend.broker.security.acls.delete([f for f in filters if f is not None])
    out = []
    for f in filters:
        if f is None:
            out.append(
                {
                    "error_code": ErrorCode.invalid_request,
                    "error_message": "unknown enum",
                    "matching_acls": (),
                }
            )
            continue
        bindings = removed.pop(0)
        matching = [
            {
                "error_code": ErrorCode.none,
                "error_message": None,
                "resource_type": b.resource_type,
                "resource_name": b.resource_name,
                "pattern_type": b.pattern_type,
                "principal": b.principal,
                "host": b.host,
                "operation": b.operation,
                "permission_type": b.permission,
            }
            for b in bindings
        ]
        out.append({"error_code": ErrorCode.none, "error_message": None, "matching_acls": matching})
    return respond(request, {"throttle_time": NO_THROTTLE, "filter_results": out})
