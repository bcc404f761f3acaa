"""Kafka topics over the broker's topics: names, partitions, configs, create and delete.

A Kafka topic is a RocketMQ topic and partition p is queue p (partitions = read queues). Names
follow Kafka's rules ([a-zA-Z0-9._-], at most 249, not "." or ".."). RocketMQ's own system topics
(TBW102, SCHEDULE_TOPIC_XXXX, the cluster and broker-name topics, %RETRY%/%DLQ% ...) are not
listed to Kafka clients. Topic configs are kept as topic attributes; retention.ms,
retention.bytes, max.message.bytes and min.insync.replicas (acks=all in a broker group, isr.py)
are enforced; cleanup.policy compact and compact,delete with min.cleanable.dirty.ratio,
delete.retention.ms and min.compaction.lag.ms are served by compaction.py; compression.type other
than "producer" and message.timestamp.type=LogAppendTime are refused (INVALID_CONFIG); the other
known Kafka names are stored and described only.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ferrymq.core.broker.topic_config import (
    AUTO_CREATE_TOPIC_KEY,
    OFFSET_MOVED_EVENT,
    SCHEDULE_TOPIC,
    SELF_TEST_TOPIC,
    TRACE_TOPIC,
)
from ferrymq.core.remoting.route import PERM_READ, PERM_WRITE, TopicConfig

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

MAX_NAME = 249
MAX_PARTITIONS = 1024
_LEGAL = re.compile(r"^[a-zA-Z0-9._-]+$")

RETENTION_MS = "retention.ms"
RETENTION_BYTES = "retention.bytes"
MAX_MESSAGE_BYTES = "max.message.bytes"
CLEANUP_POLICY = "cleanup.policy"
DELETE_RETENTION_MS = "delete.retention.ms"
MIN_COMPACTION_LAG_MS = "min.compaction.lag.ms"
MIN_CLEANABLE_DIRTY_RATIO = "min.cleanable.dirty.ratio"
#: Kafka's default max.message.bytes (message.max.bytes)
DEFAULT_MAX_MESSAGE_BYTES = 1048588

#: topic configs a client may set (name -> Kafka's default)
TOPIC_CONFIG_DEFAULTS: dict[str, str] = {
    RETENTION_MS: "",  # the broker's fileReservedTime, filled in by defaults()
    MAX_MESSAGE_BYTES: str(DEFAULT_MAX_MESSAGE_BYTES),
    "cleanup.policy": "delete",
    "compression.type": "producer",
    RETENTION_BYTES: "-1",
    "segment.bytes": "1073741824",
    "segment.ms": "604800000",
    "min.insync.replicas": "1",
    "message.timestamp.type": "CreateTime",
    "unclean.leader.election.enable": "false",
    "delete.retention.ms": "86400000",
    "min.compaction.lag.ms": "0",
    "max.compaction.lag.ms": "9223372036854775807",
    "min.cleanable.dirty.ratio": "0.5",
    "file.delete.delay.ms": "60000",
    "flush.messages": "9223372036854775807",
    "flush.ms": "9223372036854775807",
    "index.interval.bytes": "4096",
    "preallocate": "false",
    "segment.index.bytes": "10485760",
    "segment.jitter.ms": "0",
    "message.timestamp.before.max.ms": "9223372036854775807",
    "message.timestamp.after.max.ms": "9223372036854775807",
}
_LONG_CONFIGS = {RETENTION_MS, RETENTION_BYTES, "segment.ms", DELETE_RETENTION_MS, MIN_COMPACTION_LAG_MS}


def invalid_name(name: str | None) -> str | None:
    """None if ``name`` is a legal Kafka topic name, else why not (Kafka's Topic.validate)."""
    if not name:
        return "Topic name is illegal, it can't be empty"
    if name in (".", ".."):
        return 'Topic name cannot be "." or ".."'
    if len(name) > MAX_NAME:
        return f"Topic name is illegal, it can't be longer than {MAX_NAME} characters"
    if not _LEGAL.match(name):
        return (
            f'Topic name "{name}" is illegal, it contains a character other than '
            "ASCII alphanumerics, '.', '_' and '-'"
        )
    return None


def is_internal(broker: Broker, name: str) -> bool:
    """RocketMQ's system topics: hidden from topic listings, still served when named."""
    c = broker.config
    return (
        name
        in (
            AUTO_CREATE_TOPIC_KEY,
            SELF_TEST_TOPIC,
            OFFSET_MOVED_EVENT,
            SCHEDULE_TOPIC,
            TRACE_TOPIC,
            c.broker_cluster_name,
            c.broker_name,
        )
        or name.lower().startswith("rmq_sys_")
        or "%" in name
    )


def listed_topics(broker: Broker) -> list[TopicConfig]:
    """Topics a Kafka client sees when it asks for all of them."""
    return [
        tc
        for name, tc in sorted(broker.topics.topics.items())
        if invalid_name(name) is None and not is_internal(broker, name)
    ]


def partition_count(tc: TopicConfig) -> int:
    return tc.read_queue_nums


def defaults(broker: Broker) -> dict[str, str]:
    d = dict(TOPIC_CONFIG_DEFAULTS)
    d[RETENTION_MS] = str(int(broker.config.file_reserved_time * 3600 * 1000))
    return d


def config_value_error(name: str, value: str | None) -> str | None:
    """None if ``value`` is acceptable for topic config ``name``, else why not."""
    if name not in TOPIC_CONFIG_DEFAULTS:
        return f"Unknown topic config name: {name}"
    if value is None:
        return None
    if name == MAX_MESSAGE_BYTES or name in _LONG_CONFIGS:
        try:
            number = int(value)
        except ValueError:
            return f"Invalid value {value} for configuration {name}: Not a number of type LONG"
        if name == MAX_MESSAGE_BYTES and number < 0:
            return f"Invalid value {value} for configuration {name}: Value must be at least 0"
        if name in (RETENTION_MS, RETENTION_BYTES) and number < -1:
            return f"Invalid value {value} for configuration {name}: Value must be at least -1"
        if name in (DELETE_RETENTION_MS, MIN_COMPACTION_LAG_MS) and number < 0:
            return f"Invalid value {value} for configuration {name}: Value must be at least 0"
    if name == MIN_CLEANABLE_DIRTY_RATIO:
        try:
            ratio = float(value)
        except ValueError:
            return f"Invalid value {value} for configuration {name}: Not a number of type DOUBLE"
        if not 0 <= ratio <= 1:
            return f"Invalid value {value} for configuration {name}: Value must be between 0 and 1"
    return _unserved(name, value)


#: config -> (the values a broker may be asked for, the ones ferrymq serves, why not the others)
_SERVED: dict[str, tuple[frozenset[str], frozenset[str], str]] = {
    "cleanup.policy": (
        frozenset({"delete", "compact"}),
        frozenset({"delete", "compact"}),
        "",
    ),
    "compression.type": (
        frozenset({"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}),
        frozenset({"producer"}),
        "batches are stored as the producer compressed them",
    ),
    "message.timestamp.type": (
        frozenset({"CreateTime", "LogAppendTime"}),
        frozenset({"CreateTime"}),
        "records keep the producer's timestamps",
    ),
}


def _unserved(name: str, value: str) -> str | None:
    """Why a valid Kafka value is refused here (rather than accepted and ignored), or None."""
    if name == "min.insync.replicas":
        try:
            number = int(value)
        except ValueError:
            return f"Invalid value {value} for configuration {name}: Not a number of type INT"
        if number < 1:
            return f"Invalid value {value} for configuration {name}: Value must be at least 1"
        return None  # above the group's size is allowed, as in Kafka: acks=all is then refused
    rule = _SERVED.get(name)
    if rule is None:
        return None
    known, served, why = rule
    # cleanup.policy is a list, and Kafka 4.2+ accepts it empty (infinite retention)
    values = {v.strip() for v in value.split(",") if v.strip()} if name == "cleanup.policy" else {value}
    if not values <= known:
        return f"Invalid value {value} for configuration {name}"
    if values <= served:
        return None
    return f"{name}={value} is not supported: {why}"


def max_message_bytes(tc: TopicConfig) -> int:
    try:
        return int(tc.attributes.get(MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES))
    except ValueError:
        return DEFAULT_MAX_MESSAGE_BYTES


def retention_ms(tc: TopicConfig) -> int | None:
    """The topic's own retention.ms, if it has one (-1: keep forever)."""
    return -1 if _keeps_forever(tc) else _long_attribute(tc, RETENTION_MS)


def retention_bytes(tc: TopicConfig) -> int | None:
    """The topic's own retention.bytes per partition, if it has one (-1: no limit)."""
    return -1 if _keeps_forever(tc) else _long_attribute(tc, RETENTION_BYTES)


def _keeps_forever(tc: TopicConfig) -> bool:
    """An empty cleanup.policy (Kafka 4.2+) deletes nothing: retention.ms and .bytes are -1."""
    policy = tc.attributes.get("cleanup.policy")
    return policy is not None and "delete" not in policy.split(",")


def _long_attribute(tc: TopicConfig, name: str) -> int | None:
    value = tc.attributes.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def create(broker: Broker, name: str, partitions: int, configs: dict[str, str] | None = None) -> TopicConfig:
    """Create the topic and tell the name servers (the registrar re-registers at once)."""
    tc = TopicConfig(name, partitions, partitions, PERM_READ | PERM_WRITE, attributes=dict(configs or {}))
    broker.topics.update(tc)
    broker.topic_created(tc)
    return tc


def update(broker: Broker, tc: TopicConfig) -> None:
    broker.topics.update(tc)
    broker.topic_created(tc)
