"""DescribeProducers (key 61), version 0: the idempotent and transactional producers of partitions.

Per partition this broker leads: each producer's id, epoch, last sequence and last write time from the
producer state (producer_state.py, rebuilt from the stored batches as for a produce), and the first
offset of its open transaction (txn_partitions.py, -1 if none). Coordinator epoch -1 (Kafka's when the
coordinator is unknown to the partition leader). A partition of another broker group is
NOT_LEADER_OR_FOLLOWER, an unknown one UNKNOWN_TOPIC_OR_PARTITION.
With an authorizer, READ on the topic (else TOPIC_AUTHORIZATION_FAILED), as Kafka.
"""

from __future__ import annotations

from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(61, 0, 0)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    producers = ctx.frontend.producers
    txns = ctx.frontend.txn_partitions
    placed = await cluster.placements(
        {t.name: max((int(p) for p in t.partition_indexes), default=-1) for t in request.topics}
    )
    out = []
    for t in request.topics:
        denied = not authz.topic(ctx, Operation.READ, t.name)
        parts = []
        for p in t.partition_indexes:
            entry: dict[str, Any] = {
                "partition_index": p,
                "error_code": ErrorCode.none,
                "error_message": None,
                "active_producers": (),
            }
            parts.append(entry)
            if denied:
                entry["error_code"] = ErrorCode.topic_authorization_failed
                continue
            queue, error = cluster.local_queue(t.name, placed[t.name], int(p))
            if error:
                entry["error_code"] = error
                continue
            state = txns.state(t.name, queue)
            open_txns = state.open if state is not None else {}
            entry["active_producers"] = [
                {
                    "producer_id": pid,
                    "producer_epoch": epoch,
                    "last_sequence": last_seq,
                    "last_timestamp": last_ms,
                    "coordinator_epoch": -1,
                    "current_txn_start_offset": open_txns[pid][1] if pid in open_txns else -1,
                }
                for pid, epoch, last_seq, last_ms in producers.producers(t.name, queue)
            ]
        out.append({"name": t.name, "partitions": parts})
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})
