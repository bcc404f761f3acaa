"""WriteTxnMarkers (key 27), versions 1-2: a transaction coordinator ends a transaction on the
partitions this broker group leads.

Each marker (producer id and epoch, COMMIT or ABORT, coordinator epoch, topics and partitions)
goes through ``KafkaFrontend.txn_partitions.write_markers``, the call the local coordinator makes:
one control batch per partition with the producer's transaction open there, the partition's
transaction closed (the last stable offset moves; an ABORT enters the aborted index); a
partition without one answers NONE (a coordinator's retry after a crash). A partition another
broker group leads is NOT_LEADER_OR_FOLLOWER.
Leaves out: v0 (removed in Kafka 4.0; kio has no schema for it), v2's TransactionVersion (TV1
only: it is ignored).
With an authorizer, CLUSTER_ACTION on the cluster (a broker: the inter-broker principal, txn/peer.py), else
CLUSTER_AUTHORIZATION_FAILED on every partition and nothing written, as Kafka.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import respond


@api(27, 1, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    txns = ctx.frontend.txn_partitions
    may = authz.cluster(ctx, Operation.CLUSTER_ACTION)
    out = []
    for m in request.markers:
        wanted = [(t.name, int(p)) for t in m.topics for p in t.partition_indexes]
        if may:
            codes = await txns.write_markers(
                m.producer_id, m.producer_epoch, m.transaction_result, m.coordinator_epoch, wanted
            )
        else:
            codes = dict.fromkeys(wanted, ErrorCode.cluster_authorization_failed)
        topics = [
            {
                "name": t.name,
                "partitions": [
                    {"partition_index": p, "error_code": codes[(t.name, int(p))]} for p in t.partition_indexes
                ],
            }
            for t in m.topics
        ]
        out.append({"producer_id": m.producer_id, "topics": topics})
    return respond(request, {"markers": out})
