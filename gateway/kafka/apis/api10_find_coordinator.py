"""FindCoordinator (key 10), versions 0-6: the coordinator of a group or transactional id.

key_type 0 names a group's coordinator, 1 a transactional id's (txn/coordinator.py serves the
transaction APIs there). With one broker group its Kafka node coordinates every group (and
transactional id); with several, every broker names the same one for a key: a hash of the key
over the sorted names of the groups with a Kafka listener (cluster.ClusterView.coordinator_of).
It moves when such a group comes or goes; the group's offsets stay with the partitions' owners
(group/owner_offsets.py), and the other brokers answer the group's requests with
NOT_COORDINATOR. v4 answers a batch of keys.
With an authorizer, DESCRIBE on the group or transactional id (else GROUP_ or
TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
v5 only widens the errors a client may get; v6's share-group key type (2) is INVALID_REQUEST (no
share groups here).
Leaves out: share groups.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

GROUP, TRANSACTION = 0, 1


def _refused(error: ErrorCode) -> dict[str, Any]:
    return {"node_id": -1, "host": "", "port": -1, "error_code": error, "error_message": None}


@api(10, 0, 6)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    key_type = getattr(request, "key_type", GROUP)

    async def find(key: str) -> dict[str, Any]:
        if key_type not in (GROUP, TRANSACTION):
            return {
                "node_id": -1,
                "host": "",
                "port": -1,
                "error_code": ErrorCode.invalid_request,
                "error_message": f"unknown coordinator key type {key_type}",
            }
        if key_type == GROUP and not authz.group(ctx, Operation.DESCRIBE, key):
            return _refused(ErrorCode.group_authorization_failed)
        if key_type == TRANSACTION and not authz.transactional_id(ctx, Operation.DESCRIBE, key):
            return _refused(ErrorCode.transactional_id_authorization_failed)
        node = await cluster.coordinator_of(key, ctx.conn.listener_port)
        return {
            "node_id": node.node_id,
            "host": node.host,
            "port": node.port,
            "error_code": ErrorCode.none,
            "error_message": None,
        }

    if ctx.api_version >= 4:
        coordinators = [{"key": key, **await find(key)} for key in request.coordinator_keys]
        return respond(request, {"throttle_time": NO_THROTTLE, "coordinators": coordinators})
    return respond(request, {"throttle_time": NO_THROTTLE, **await find(request.key)})
