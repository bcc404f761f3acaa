"""DescribeLogDirs (key 35), versions 1-4: the store directory and the size of each partition in it.

One log dir, the broker's store root (storePathRootDir), with its disk's total and usable bytes (v4).
A partition's size is the bytes of its stored entries (batches and native messages as stored, commit-log
framing included), summed from its consume-queue units (partition_sizes.py); offset lag 0, no future
replicas. ``topics`` null: every Kafka-listed topic with a partition on this broker; named topics list the
named partitions this broker has (others are left out, as Kafka leaves out partitions it does not host).
With an authorizer, DESCRIBE on the cluster (else CLUSTER_AUTHORIZATION_FAILED, v3+ at the top, and no
dirs).
Leaves out: v0 (removed in Kafka 4.0; kio has no schema), several log dirs (the store has one root).
"""

from __future__ import annotations

import shutil
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond


@api(35, 1, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    if not authz.cluster(ctx, Operation.DESCRIBE):
        return respond(
            request,
            {
                "throttle_time": NO_THROTTLE,
                "error_code": ErrorCode.cluster_authorization_failed,
                "results": (),
            },
        )
    broker = ctx.frontend.broker
    cluster = ctx.frontend.cluster
    store = broker.store
    if request.topics is None:
        wanted: list[tuple[str, list[int] | None]] = [
            (tc.topic_name, None) for tc in topics.listed_topics(broker)
        ]
    else:
        wanted = [(t.topic, [int(p) for p in t.partitions]) for t in request.topics]
    out = []
    for name, partitions in wanted:
        if broker.topics.get(name) is None:
            continue
        where = cluster.placement(name)
        chosen = range(where.total) if partitions is None else partitions
        parts = []
        for p in chosen:
            queue = where.queue_of(p) if 0 <= p < where.total else None
            if queue is None or queue < 0:
                continue
            size = ctx.frontend.partition_sizes.size(store.consume_queue(name, queue))
            parts.append(
                {"partition_index": p, "partition_size": size, "offset_lag": 0, "is_future_key": False}
            )
        if parts:
            out.append({"name": name, "partitions": parts})
    usage = shutil.disk_usage(store.root)
    result = {
        "error_code": ErrorCode.none,
        "log_dir": str(store.root.resolve()),
        "topics": out,
        "total_bytes": usage.total,
        "usable_bytes": usage.free,
    }
    return respond(request, {"throttle_time": NO_THROTTLE, "error_code": ErrorCode.none, "results": [result]})
