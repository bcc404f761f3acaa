"""Metadata (key 3), versions 0-13: brokers, topics, partitions and their leaders.

Partition p of a topic is queue p with one broker group; with several, the topic's queues are
numbered across the groups sorted by broker name (cluster.py). A partition's leader is the broker
owning that queue (LEADER_NOT_AVAILABLE when it has no Kafka listener; in controller mode the
group's current master, named by a slave too), the leader epoch its master epoch (0 outside
controller mode, leader_epochs.py). Replicas and ISR are the leader alone even when its group has
slaves: a classic slave has no Kafka listener (a controller-mode group is one node), and an id
missing from ``brokers`` is a placeholder node (host "", port -1) to Java's MetadataResponse and
an unknown broker to librdkafka's rack lookups, for no gain to a client (acks=all waits for the
group's in-sync slaves all the same, isr.py); the admin API and metrics show the group's
replication. Brokers are this one and every other group whose Kafka address the name servers know.
Topic ids are stable UUIDs derived from the cluster and topic names (topic_ids.py). A named topic that
does not exist is created when auto-creation is allowed (the request's allow_auto_topic_creation, v4+, and
the broker's autoCreateTopicEnable) with defaultTopicQueueNums partitions; a name Kafka does not
allow is INVALID_TOPIC_EXCEPTION. Listing all topics leaves RocketMQ's system topics out, and
lists this broker's topics only.
With an authorizer (authz.py), a full listing shows only topics the principal may DESCRIBE, a named one it
may not is TOPIC_AUTHORIZATION_FAILED, and auto-creation needs CREATE on the cluster or the topic.
v13's top-level error is always NONE (we never redirect a client). A broker's rack is its group's
brokerRack (cluster.py; client-side rack-aware assignors read it). Leaves out: authorized
operations (always "not computed").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.cluster import NO_LEADER, TopicPartitions
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.leader_epochs import current_epoch
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.topic_ids import ZERO, topic_id

if TYPE_CHECKING:
    from uuid import UUID

    from ferrymq.gateway.kafka.cluster import ClusterView

NOT_COMPUTED = -2147483648
#: Metadata is how clients learn of new partitions and brokers: its routes are at most this old
ROUTE_FRESH_S = 1.0


@api(3, 0, 13)
async def handle(ctx: RequestContext, request: Any) -> Any:
    cluster = ctx.frontend.cluster
    broker = ctx.frontend.broker
    requested = request.topics
    if requested is None or (ctx.api_version == 0 and not requested):
        # listing all topics shows only those the principal may DESCRIBE
        wanted = [
            (tc.topic_name, None)
            for tc in topics.listed_topics(broker)
            if authz.topic(ctx, Operation.DESCRIBE, tc.topic_name)
        ]
    else:
        wanted = [(t.name, getattr(t, "topic_id", None)) for t in requested]
    auto = getattr(request, "allow_auto_topic_creation", True) and broker.config.auto_create_topic_enable
    await cluster.refresh_peers()
    named = {name: -1 for name, _ in wanted if name}
    placed = await cluster.placements(named, max_age=ROUTE_FRESH_S)
    out = []
    for name, tid in wanted:
        if not name and tid is not None and tid != ZERO:  # by id: the Java client sends the name as ""
            name = ctx.frontend.topic_ids.name_in(tid, broker.topics)
            if name is None:
                out.append(_error(ErrorCode.unknown_topic_id, None, tid))
                continue
        assert name is not None
        if requested and not authz.topic(ctx, Operation.DESCRIBE, name):
            out.append(_error(ErrorCode.topic_authorization_failed, name))
            continue
        tc = broker.topics.get(name)
        where = placed.get(name)
        if tc is None and where is not None and where.owners:  # on other broker groups only
            out.append(topic_metadata(cluster, name, where))
            continue
        if tc is None:
            if topics.invalid_name(name):
                out.append(_error(ErrorCode.invalid_topic_exception, name))
                continue
            if not cluster.leads:  # a slave creates nothing: its master will, asked there
                out.append(_error(ErrorCode.leader_not_available, name))
                continue
            if not auto:
                out.append(_error(ErrorCode.unknown_topic_or_partition, name))
                continue
            if not (authz.cluster(ctx, Operation.CREATE) or authz.topic(ctx, Operation.CREATE, name)):
                out.append(_error(ErrorCode.topic_authorization_failed, name))
                continue
            tc = topics.create(broker, name, broker.config.default_topic_queue_nums)
        out.append(topic_metadata(cluster, tc.topic_name, cluster.placement(tc.topic_name)))
    brokers = [
        {"node_id": n.node_id, "host": n.host, "port": n.port, "rack": n.rack}
        for n in cluster.nodes(ctx.conn.listener_port)
    ]
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "error_code": ErrorCode.none,
            "brokers": brokers,
            "cluster_id": cluster.cluster_id,
            "controller_id": cluster.node_id,
            "topics": out,
        },
    )


def _error(code: ErrorCode, name: str | None, tid: UUID | None = None) -> dict[str, Any]:
    return {
        "error_code": code,
        "name": name,
        "topic_id": tid or ZERO,
        "is_internal": False,
        "partitions": (),
        "topic_authorized_operations": NOT_COMPUTED,
    }


def topic_metadata(cluster: ClusterView, name: str, where: TopicPartitions) -> dict[str, Any]:
    partitions = []
    for p in range(where.total):
        leader = cluster.leader_of(name, p)
        partitions.append(
            {
                "error_code": ErrorCode.none if leader != NO_LEADER else ErrorCode.leader_not_available,
                "partition_index": p,
                "leader_id": leader,
                "leader_epoch": current_epoch(cluster.broker),
                "replica_nodes": (leader,),
                "isr_nodes": (leader,),
                "offline_replicas": (),
            }
        )
    return {
        "error_code": ErrorCode.none,
        "name": name,
        "topic_id": topic_id(cluster.cluster_id, name),
        "is_internal": topics.is_internal(cluster.broker, name),
        "partitions": partitions,
        "topic_authorized_operations": NOT_COMPUTED,
    }
