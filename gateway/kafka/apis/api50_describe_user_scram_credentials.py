"""DescribeUserScramCredentials (key 50), version 0: each user's SCRAM mechanisms and iterations.

All users when ``users`` is null or empty; a named user with no credential is RESOURCE_NOT_FOUND, a name
given twice DUPLICATE_RESOURCE; with an authorizer, DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
Salts and keys are never shown.
Leaves out: nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.auth.scram import MECHANISM_CODES
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

CODE_OF = {name: code for code, name in MECHANISM_CODES.items()}


@api(50, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    values: dict[str, Any] = {
        "throttle_time": NO_THROTTLE,
        "error_code": ErrorCode.none,
        "error_message": None,
    }
    if not authz.cluster(ctx, Operation.DESCRIBE):
        return respond(
            request,
            {
                **values,
                "error_code": ErrorCode.cluster_authorization_failed,
                "error_message": None,
                "results": (),
            },
        )
    users = ctx.frontend.broker.security.scram.users()
    names = [u.name for u in request.users] if request.users else sorted(users)
    counts = Counter(names)
    results = []
    for name in dict.fromkeys(names):
        infos: list[dict[str, int]]
        if counts[name] > 1:
            error, message, infos = (
                ErrorCode.duplicate_resource,
                f"Cannot describe SCRAM credentials for the same user twice in a single request: {name}",
                [],
            )
        elif name not in users:
            error, message, infos = (
                ErrorCode.resource_not_found,
                f"Attempt to describe a user credential that does not exist: {name}",
                [],
            )
        else:
            error, message = ErrorCode.none, None
            infos = [{"mechanism": CODE_OF[m], "iterations": c.iterations} for m, c in users[name].items()]
        results.append(
            {"user": name, "error_code": error, "error_message": message, "credential_infos": infos}
        )
    return respond(request, {**values, "results": results})
