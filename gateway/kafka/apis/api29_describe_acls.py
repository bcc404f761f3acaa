"""DescribeAcls (key 29), versions 1-3: the ACL bindings a filter matches, grouped by resource pattern.

Needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); SECURITY_DISABLED when no authorizer is
configured (kafkaAuthorizerEnable off), as Kafka answers. Shows the bindings made with CreateAcls (RocketMQ's
plain_acl.yml accounts are managed in their own file).
Leaves out: version 0 (removed in Kafka 4.0).
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import AclBinding, AclFilter, Operation, PatternType, Permission, ResourceType
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


def acl_filter(f: Any) -> AclFilter:
    """A request's filter (DescribeAcls' top level, or one DeleteAcls filter) as core's AclFilter."""
    return AclFilter(
        ResourceType(f.resource_type_filter),
        f.resource_name_filter,
        PatternType(f.pattern_type_filter),
        f.principal_filter,
        f.host_filter,
        Operation(f.operation),
        Permission(f.permission_type),
    )


def refused(ctx: RequestContext, operation: Operation) -> tuple[ErrorCode, str] | None:
    """Why an ACL API is refused: no authorizer, or the principal may not act on the cluster."""
    if not authz.on(ctx):
        return ErrorCode.security_disabled, "No Authorizer is configured (kafkaAuthorizerEnable=false)"
    if not authz.cluster(ctx, operation):
        return ErrorCode.cluster_authorization_failed, "Cluster authorization failed"
    return None


@api(29, 1, 3)
async def handle(ctx: RequestContext, request: Any) -> Any:
    values: dict[str, Any] = {"throttle_time": NO_THROTTLE, "resources": ()}
    why = refused(ctx, Operation.DESCRIBE)
    if why is not None:
        return respond(request, {**values, "error_code": why[0], "error_message": why[1]})
    try:
        flt = acl_filter(request)
    except ValueError as exc:
        return respond(
            request, {**values, "error_code": ErrorCode.invalid_request, "error_message": str(exc)}
        )
    grouped: dict[tuple[int, str, int], list[AclBinding]] = {}
    for b in ctx.frontend.broker.security.acls.describe(flt):
        grouped.setdefault((b.resource_type, b.resource_name, b.pattern_type), []).append(b)
    resources = [
        {
            "resource_type": rt,
            "resource_name": name,
            "pattern_type": pt,
            "acls": [
                {
                    "principal": b.principal,
                    "host": b.host,
                    "operation": b.operation,
                    "permission_type": b.permission,
                }
                for b in bindings
            ],
        }
        for (rt, name, pt), bindings in grouped.items()
    ]
    return respond(
        request, {**values, "error_code": ErrorCode.none, "error_message": None, "resources": resources}
    )
