"""AlterUserScramCredentials (key 51), version 0: add, replace and delete users' SCRAM credentials.

An upsertion carries the salt and the salted password (never the password); the stored and server keys are
derived from them and written to the users file (fsynced) before the answer. Errors as Kafka's:
UNSUPPORTED_SASL_MECHANISM for a mechanism other than SCRAM-SHA-256 (1) / SCRAM-SHA-512 (2),
UNACCEPTABLE_CREDENTIAL for iterations outside 4096-16384 or an empty name or salt, DUPLICATE_RESOURCE for a
user altered twice in one request, RESOURCE_NOT_FOUND for deleting a credential that does not exist; with an
authorizer, ALTER on the cluster.
Leaves out: nothing.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.core.auth.scram import MAX_ITERATIONS, MECHANISM_CODES, MIN_ITERATIONS, from_salted_password
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


def _check(u: Any, is_upsert: bool) -> tuple[ErrorCode, str] | None:
    if not u.name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if u.mechanism not in MECHANISM_CODES:
        return ErrorCode.unsupported_sasl_mechanism, f"Unknown SCRAM mechanism {u.mechanism}"
    if is_upsert:
        if not MIN_ITERATIONS <= u.iterations <= MAX_ITERATIONS:
            return ErrorCode.unacceptable_credential, f"Iterations must be {MIN_ITERATIONS}-{MAX_ITERATIONS}"
        if not u.salt or not u.salted_password:
            return ErrorCode.unacceptable_credential, "Salt and salted password must not be empty"
    return None


@api(51, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    store = ctx.frontend.broker.security.scram
    may = authz.cluster(ctx, Operation.ALTER)
    changes = [(d, False) for d in request.deletions] + [(u, True) for u in request.upsertions]
    counts = Counter(c.name for c, _ in changes)
    errors: dict[str, tuple[ErrorCode, str | None]] = {}
    for change, is_upsert in changes:
        name = change.name
        if not may:
            errors[name] = (ErrorCode.cluster_authorization_failed, None)
        elif counts[name] > 1:
            errors[name] = (
                ErrorCode.duplicate_resource,
                "A user credential cannot be altered twice in the same request",
            )
        elif (bad := _check(change, is_upsert)) is not None:
            errors[name] = bad
        elif not is_upsert and store.get(name, MECHANISM_CODES[change.mechanism]) is None:
            errors[name] = (
                ErrorCode.resource_not_found,
                "Attempt to delete a user credential that does not exist",
            )
    for change, is_upsert in changes:
        if change.name in errors:
            continue
        mechanism = MECHANISM_CODES[change.mechanism]
        if is_upsert:
            cred = from_salted_password(mechanism, change.salted_password, change.salt, change.iterations)
            store.upsert(change.name, mechanism, cred)
        else:
            store.delete(change.name, mechanism)
    results = [
        {
            "user": name,
            "error_code": errors.get(name, (ErrorCode.none, None))[0],
            "error_message": errors.get(name, (ErrorCode.none, None))[1],
        }
        for name in dict.fromkeys(c.name for c, _ in changes)
    ]
    return respond(request, {"throttle_time": NO_THROTTLE, "results": results})
