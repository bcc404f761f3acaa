"""CreateTopics (key 19), versions 2-7 (advertised from 0).

A topic becomes a RocketMQ topic with one read and one write queue per partition, registered with
the name servers at once. num_partitions -1 takes defaultTopicQueueNums; replication factor -1 or
1 (one replica per broker group); explicit assignments give the partition count. Configs are
checked (topics.py: values not served are INVALID_CONFIG) and kept as topic attributes;
validate_only checks without creating. The reply waits until the topics file holds the new topics
(written off the event loop; a write that fails gives KAFKA_STORAGE_ERROR).
With an authorizer, CREATE on the cluster or on each topic (else TOPIC_AUTHORIZATION_FAILED).
Leaves out: replica placement (assignments' broker ids are not checked), v5+ topic config errors.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from kio.index import load_response_from_request
from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond
from ferrymq.gateway.kafka.topic_ids import topic_id

log = logging.getLogger("ferrymq.kafka.topics")

DEFAULT_CONFIG, DYNAMIC_TOPIC_CONFIG = 5, 1


@api(19, 2, 7)
async def handle(ctx: RequestContext, request: Any) -> Any:
    f = ctx.frontend
    broker = f.broker
    config_type = sys.modules[load_response_from_request(type(request)).__module__].__dict__.get(
        "CreatableTopicConfigs"
    )
    seen: set[str] = set()
    out = []
    on_cluster = authz.cluster(ctx, Operation.CREATE)  # else CREATE on each topic, as Kafka asks
    for t in request.topics:
        result: dict[str, Any] = {
            "name": t.name,
            "topic_id": topic_id(f.cluster.cluster_id, t.name),
            "error_code": ErrorCode.none,
            "error_message": None,
            "topic_config_error_code": 0,
            "num_partitions": -1,
            "replication_factor": -1,
            "configs": None,
        }
        out.append(result)
        if not on_cluster and not authz.topic(ctx, Operation.CREATE, t.name):
            seen.add(t.name)
            result["error_code"] = ErrorCode.topic_authorization_failed
            result["error_message"] = "Authorization failed."
            continue
        error, message, count, configs = _check(ctx, t, seen)
        seen.add(t.name)
        if error != ErrorCode.none:
            result["error_code"], result["error_message"] = error, message
            continue
        if not request.validate_only:
            topics.create(broker, t.name, count, configs)
        result["num_partitions"] = count
        result["replication_factor"] = 1
        if config_type is not None:
            merged = {**topics.defaults(broker), **configs}
            result["configs"] = tuple(
                config_type(
                    name=k,
                    value=v,
                    read_only=False,
                    config_source=DYNAMIC_TOPIC_CONFIG if k in configs else DEFAULT_CONFIG,
                    is_sensitive=False,
                )
                for k, v in sorted(merged.items())
            )
    if broker.topics.unwritten:  # the reply promises the topics: they are on disk first
        try:
            await broker.topics.wait_persisted()
        except OSError as exc:
            log.error("topics of a CreateTopics from %s not persisted: %s", ctx.conn.peer, exc)
            for result in out:
                if result["error_code"] == ErrorCode.none:
                    result["error_code"] = ErrorCode.kafka_storage_error
                    result["error_message"] = "cannot persist the topic config (logged by the broker)"
    return respond(request, {"throttle_time": NO_THROTTLE, "topics": out})


def _check(ctx: RequestContext, t: Any, seen: set[str]) -> tuple[ErrorCode, str | None, int, dict[str, str]]:
    broker = ctx.frontend.broker
    if t.name in seen:
        return ErrorCode.invalid_request, f"Duplicate topic name {t.name} in the request", 0, {}
    reason = topics.invalid_name(t.name)
    if reason:
        return ErrorCode.invalid_topic_exception, reason, 0, {}
    if broker.topics.get(t.name) is not None:
        return ErrorCode.topic_already_exists, f"Topic '{t.name}' already exists.", 0, {}
    count = len(t.assignments) if t.assignments else t.num_partitions
    if count == -1:
        count = broker.config.default_topic_queue_nums
    if not 1 <= count <= topics.MAX_PARTITIONS:
        return ErrorCode.invalid_partitions, f"Number of partitions must be 1-{topics.MAX_PARTITIONS}.", 0, {}
    if t.replication_factor not in (-1, 1) and not t.assignments:
        return (
            ErrorCode.invalid_replication_factor,
            f"Replication factor: {t.replication_factor} larger than available brokers: 1.",
            0,
            {},
        )
    configs: dict[str, str] = {}
    for c in t.configs:
        problem = topics.config_value_error(c.name, c.value)
        if problem:
            return ErrorCode.invalid_config, problem, 0, {}
        if c.value is not None:
            configs[c.name] = c.value
    return ErrorCode.none, None, count, configs
