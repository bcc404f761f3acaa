"""DescribeConfigs (key 32), versions 1-4 (advertised from 0): topic and broker configs.

A topic's configs are Kafka's topic config names (topics.py) with the topic's own values (kept
as topic attributes, source DYNAMIC_TOPIC_CONFIG) over the defaults (DEFAULT_CONFIG; retention.ms
defaults to the broker's fileReservedTime). A broker resource lists the broker configs clients
and tools read (listeners, log.dirs, retention, group timeouts, ...), mapped from broker.conf:
STATIC_BROKER_CONFIG where the file sets them, else DEFAULT_CONFIG.
With an authorizer, DESCRIBE_CONFIGS on the topic (else TOPIC_AUTHORIZATION_FAILED) or, for the broker, on
the cluster (CLUSTER_AUTHORIZATION_FAILED), per resource, as Kafka.
Leaves out: synonyms beyond the value's own source, broker loggers, documentation text.
"""

from __future__ import annotations

import sys
from typing import Any

from kio.index import load_response_from_request
from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

TOPIC, BROKER = 2, 4
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5
STRING, INT, LONG, BOOLEAN, LIST, DOUBLE = 2, 3, 5, 1, 7, 6
_TYPES = {
    topics.RETENTION_MS: LONG,
    topics.MAX_MESSAGE_BYTES: INT,
    "cleanup.policy": LIST,
    "retention.bytes": LONG,
    "segment.bytes": INT,
    "segment.ms": LONG,
    "min.insync.replicas": INT,
    "unclean.leader.election.enable": BOOLEAN,
    "preallocate": BOOLEAN,
    "min.cleanable.dirty.ratio": DOUBLE,
}


@api(32, 1, 4)
async def handle(ctx: RequestContext, request: Any) -> Any:
    module = sys.modules[load_response_from_request(type(request)).__module__]
    entry_type = module.DescribeConfigsResourceResult
    synonym_type = module.DescribeConfigsSynonym
    with_synonyms = getattr(request, "include_synonyms", False)
    results = []
    for res in request.resources:
        result: dict[str, Any] = {
            "error_code": ErrorCode.none,
            "error_message": None,
            "resource_type": res.resource_type,
            "resource_name": res.resource_name,
            "configs": (),
        }
        results.append(result)
        values = _values(ctx, res, result)
        if values is None:
            continue
        keys = res.configuration_keys
        entries = []
        for name, (value, source, read_only) in sorted(values.items()):
            if keys is not None and name not in keys:
                continue
            fields: dict[str, Any] = {
                "name": name,
                "value": value,
                "read_only": read_only,
                "config_source": source,
                "is_sensitive": False,
                "synonyms": (synonym_type(name=name, value=value, source=source),) if with_synonyms else (),
                "config_type": _TYPES.get(name, STRING),
                "documentation": None,
            }
            entries.append(
                entry_type(**{k: v for k, v in fields.items() if k in entry_type.__dataclass_fields__})
            )
        result["configs"] = tuple(entries)
    return respond(request, {"throttle_time": NO_THROTTLE, "results": results})


def _values(ctx: RequestContext, res: Any, result: dict[str, Any]) -> dict[str, tuple[str, int, bool]] | None:
    broker = ctx.frontend.broker
    refusal = authz.config_refusal(ctx, Operation.DESCRIBE_CONFIGS, res.resource_type, res.resource_name)
    if refusal is not None:
        result["error_code"], result["error_message"] = refusal
        return None
    if res.resource_type == TOPIC:
        tc = broker.topics.get(res.resource_name)
        if tc is None:
            result["error_code"] = ErrorCode.unknown_topic_or_partition
            result["error_message"] = f"Topic {res.resource_name} does not exist."
            return None
        values = {k: (v, DEFAULT_CONFIG, False) for k, v in topics.defaults(broker).items()}
        for k, v in tc.attributes.items():
            if k in topics.TOPIC_CONFIG_DEFAULTS:
                values[k] = (v, DYNAMIC_TOPIC_CONFIG, False)
        return values
    if res.resource_type == BROKER:
        if res.resource_name not in ("", str(ctx.frontend.cluster.node_id)):
            result["error_code"] = ErrorCode.invalid_request
            result["error_message"] = f"Unexpected broker id, expected {ctx.frontend.cluster.node_id}"
            return None
        return _broker_values(ctx)
    result["error_code"] = ErrorCode.invalid_request
    result["error_message"] = f"Unsupported resource type {res.resource_type}"
    return None


def _broker_values(ctx: RequestContext) -> dict[str, tuple[str, int, bool]]:
    """The broker configs clients read, from broker.conf: STATIC where the file sets the key behind
    them, DEFAULT where ferrymq's default applies; all read-only (they change with a restart)."""
    frontend = ctx.frontend
    c = frontend.broker.config
    given = c.model_fields_set
    ports = frontend.listener_ports()
    listeners = ",".join(f"{name}://{frontend.host}:{port}" for name, port in ports.items())
    advertised = ",".join(f"{name}://{frontend.advertised_host}:{port}" for name, port in ports.items())
    inter_broker = frontend.inter_broker.listener or next(iter(ports))  # a listener's name is its protocol

    def conf(field: str) -> tuple[str, tuple[str, ...]]:
        value = getattr(c, field)
        return (str(value).lower() if isinstance(value, bool) else str(value)), (field,)

    retention_ms = str(int(c.file_reserved_time * 3600 * 1000))
    # config -> (value, the BrokerConfig fields it comes from)
    settings: dict[str, tuple[str, tuple[str, ...]]] = {
        "broker.id": (str(frontend.cluster.node_id), ("broker_name",)),
        "node.id": (str(frontend.cluster.node_id), ("broker_name",)),
        "process.roles": ("broker", ()),
        "listeners": (listeners, ("kafka_listen_port", "kafka_listeners")),
        "advertised.listeners": (advertised, ("broker_ip1", "kafka_listen_port", "kafka_listeners")),
        "inter.broker.listener.name": (inter_broker, ("kafka_inter_broker_listener_name", "kafka_listeners")),
        "security.inter.broker.protocol": (
            inter_broker,
            ("kafka_inter_broker_listener_name", "kafka_listeners"),
        ),
        "log.dirs": conf("store_path_root_dir"),
        "log.dir": conf("store_path_root_dir"),
        "log.segment.bytes": conf("mapped_file_size_commit_log"),
        "log.retention.ms": (retention_ms, ("file_reserved_time",)),
        "log.retention.hours": (str(int(c.file_reserved_time)), ("file_reserved_time",)),
        "log.retention.bytes": ("-1", ()),
        "log.cleanup.policy": ("delete", ()),
        "num.partitions": conf("default_topic_queue_nums"),
        "auto.create.topics.enable": conf("auto_create_topic_enable"),
        "delete.topic.enable": ("true", ()),
        "message.max.bytes": (str(topics.DEFAULT_MAX_MESSAGE_BYTES), ()),
        "compression.type": ("producer", ()),
        "default.replication.factor": ("1", ()),  # Metadata names the leader as the only replica
        "offsets.topic.replication.factor": ("1", ()),
        "transaction.state.log.replication.factor": ("1", ()),
        "min.insync.replicas": conf("min_in_sync_replicas"),
        "group.min.session.timeout.ms": conf("group_min_session_timeout_ms"),
        "group.max.session.timeout.ms": conf("group_max_session_timeout_ms"),
        "group.initial.rebalance.delay.ms": conf("group_initial_rebalance_delay_ms"),
        "transaction.max.timeout.ms": conf("kafka_transaction_max_timeout_ms"),
        "transactional.id.expiration.ms": conf("kafka_transactional_id_expiration_ms"),
        "producer.id.expiration.ms": conf("kafka_producer_id_expiration_ms"),
        "max.incremental.fetch.session.cache.slots": conf("kafka_fetch_session_cache_slots"),
    }
    return {
        name: (value, STATIC_BROKER_CONFIG if given.intersection(fields) else DEFAULT_CONFIG, True)
        for name, (value, fields) in settings.items()
    }
