"""Request and response bodies of the admin REST API (pydantic: validated, and in /openapi.json).

Times are milliseconds since the epoch, as RocketMQ stores them; offsets are queue offsets.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_OFFSET = 2**63 - 1
Perm = Literal[2, 4, 6]  # RocketMQ's permission bits: 2 write, 4 read, 6 read and write
TopicKind = Literal["normal", "retry", "dlq", "system"]


class Strict(BaseModel):
    """Request bodies: unknown fields are a mistake worth a 422, not something to ignore."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    detail: str


# ---- health ---------------------------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    registered: bool = Field(description="registered with at least one name server")
    store_writable: bool
    reason: str | None = Field(None, description="why the store refuses writes (absent when writable)")


# ---- cluster --------------------------------------------------------------------------------


class NameServerOut(BaseModel):
    addr: str
    reachable: bool


class ReplicaOut(BaseModel):
    addr: str = Field(description="the slave's HA connection, host:port")
    ack_offset: int = Field(description="commit-log offset the slave acknowledged")
    lag_bytes: int = Field(description="the master's commit-log end minus ack_offset")
    lag_messages: int | None = Field(None, description="messages (consume-queue entries) past ack_offset")
    in_sync: bool = Field(
        description="connected and within haMaxGapNotInSync; in controller mode: in the in-sync set"
    )
    last_ack_ms: int | None = None


class ReplicationOut(BaseModel):
    """A broker's replication (RocketMQ's GET_BROKER_HA_STATUS): its slaves on a master, its
    link to the master on a slave."""

    broker_role: str = Field(description="ASYNC_MASTER, SYNC_MASTER or SLAVE (brokerRole)")
    commit_log_max_offset: int | None = Field(None, description="the broker's commit-log end")
    epoch: int | None = Field(None, description="controller mode: the master epoch this broker acts on")
    in_sync_slaves: int = 0
    in_sync_set: list[str] = Field(
        default_factory=list, description="the master and its in-sync slaves (what acks=all waits for)"
    )
    slaves: list[ReplicaOut] = Field(default_factory=list)
    master_ha_addr: str | None = Field(None, description="slave: the master's HA address")
    master_addr: str | None = Field(None, description="slave: the master's remoting address")
    master_connected: bool | None = Field(None, description="slave: whether its HA link is up")


class BrokerOut(BaseModel):
    cluster: str
    broker_name: str
    broker_id: int
    addr: str
    role: Literal["MASTER", "SLAVE"]
    replication: ReplicationOut | None = Field(None, description="absent when the broker did not answer")
    local: bool = Field(description="the broker serving this API")
    reachable: bool
    version: str | None = None
    boot_timestamp: int | None = None
    uptime_seconds: float | None = None
    disk_used_bytes: int | None = Field(None, description="bytes the store occupies")
    disk_total_bytes: int | None = Field(None, description="size of the store's file system")
    disk_used_ratio: float | None = Field(None, description="file system use, 0..1")
    put_messages: int | None = None
    get_messages: int | None = None


class ClusterOut(BaseModel):
    name_servers: list[NameServerOut]
    clusters: dict[str, list[str]] = Field(description="cluster name -> broker group names")
    brokers: list[BrokerOut]


# ---- topics ---------------------------------------------------------------------------------


class QueueOut(BaseModel):
    queue_id: int
    min_offset: int
    max_offset: int
    messages: int
    last_store_time: int | None = Field(None, description="store time of the newest message (ms)")


class TopicOut(BaseModel):
    name: str
    kind: TopicKind
    read_queues: int
    write_queues: int
    perm: int
    perm_text: str = Field(description="R, W, RW or -")
    order: bool
    messages: int = Field(description="messages retained, over all queues")


class QueueDataOut(BaseModel):
    broker_name: str
    read_queues: int
    write_queues: int
    perm: int


class BrokerDataOut(BaseModel):
    cluster: str
    broker_name: str
    addrs: dict[str, str] = Field(description="broker id -> address")


class RouteOut(BaseModel):
    queue_datas: list[QueueDataOut]
    broker_datas: list[BrokerDataOut]


class TopicDetailOut(TopicOut):
    route: RouteOut | None = Field(description="as the name servers report it; null if unknown")
    queues: list[QueueOut]


class TopicCreate(Strict):
    name: str = Field(min_length=1, max_length=127, examples=["orders"])
    queues: int = Field(8, ge=1, le=1024, description="read and write queues, unless given apart")
    read_queues: int | None = Field(None, ge=1, le=1024)
    write_queues: int | None = Field(None, ge=1, le=1024)
    perm: Perm = 6
    order: bool = False


class TopicUpdate(Strict):
    queues: int | None = Field(None, ge=1, le=1024)
    read_queues: int | None = Field(None, ge=1, le=1024)
    write_queues: int | None = Field(None, ge=1, le=1024)
    perm: Perm | None = None
    order: bool | None = None


# ---- groups ---------------------------------------------------------------------------------


class MemberOut(BaseModel):
    client_id: str
    address: str
    client: str = Field(description="language or client software")
    version: str
    last_seen_ms_ago: int | None = None
    subscriptions: dict[str, str] = Field(
        default_factory=dict, description="what this member subscribes to: topic -> expression"
    )


class SubscriptionOut(BaseModel):
    topic: str
    expression: str


class QueueProgressOut(BaseModel):
    topic: str
    queue_id: int
    broker_offset: int = Field(description="the queue's max offset: where the next message goes")
    committed_offset: int | None = Field(description="null: the group never committed here")
    lag: int
    last_store_time: int | None = None


class GroupOut(BaseModel):
    name: str
    protocol: Literal["native", "kafka"]
    state: str
    member_count: int
    topics: list[str]
    total_lag: int


class GroupDetailOut(GroupOut):
    members: list[MemberOut]
    subscriptions: list[SubscriptionOut]
    consistent_subscriptions: bool = Field(
        True, description="false when members subscribe differently: some messages may be missed"
    )
    queues: list[QueueProgressOut]


class ResetOffset(Strict):
    to: Annotated[int, Field(ge=0, le=MAX_OFFSET)] | Literal["earliest", "latest"] = Field(
        description="earliest, latest, or a store timestamp in ms since the epoch",
        examples=["earliest", 1700000000000],
    )
    topic: str | None = Field(None, description="only this topic (default: every topic of the group)")
    force: bool = Field(False, description="reset even while the group has live members")


class OffsetChangeOut(BaseModel):
    topic: str
    queue_id: int
    old: int | None
    new: int


class ResetOffsetOut(BaseModel):
    group: str
    offsets: list[OffsetChangeOut]


# ---- messages -------------------------------------------------------------------------------


class MessageOut(BaseModel):
    msg_id: str = Field(description="the offset message id (store host + commit-log offset)")
    unique_key: str | None = Field(description="the producer's message id (UNIQ_KEY)")
    topic: str
    queue_id: int
    queue_offset: int
    commit_log_offset: int
    tags: str | None
    keys: list[str]
    body: str
    body_encoding: Literal["text", "base64"]
    body_size: int
    properties: dict[str, str]
    born_timestamp: int
    born_host: str
    store_timestamp: int
    store_host: str
    reconsume_times: int
    format: Literal["rocketmq", "batch"] = Field(
        "rocketmq", description="batch: a verbatim batch entry (e.g. a Kafka record batch), body base64"
    )


class QueueMessagesOut(BaseModel):
    topic: str
    queue_id: int
    min_offset: int
    max_offset: int
    next_offset: int
    messages: list[MessageOut]


class SendMessage(Strict):
    body: str = Field(max_length=64 * 1024 * 1024)
    body_encoding: Literal["text", "base64"] = "text"
    tags: str | None = Field(None, min_length=1, max_length=255)
    keys: list[Annotated[str, Field(min_length=1, max_length=255)]] | None = Field(None, max_length=64)
    properties: dict[str, str] = Field(default_factory=dict, max_length=128)
    queue_id: int | None = Field(None, ge=0, le=1023, description="default: any writable queue")

    @field_validator("tags")
    @classmethod
    def _no_separators(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in "\x01\x02"):
            raise ValueError("must not contain the property separators \\x01 or \\x02")
        return value

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str] | None) -> list[str] | None:
        for key in value or []:
            if any(c in key for c in " \x01\x02"):
                raise ValueError("a key must not contain spaces or \\x01 / \\x02")
        return value

    @field_validator("properties")
    @classmethod
    def _props(cls, value: dict[str, str]) -> dict[str, str]:
        for k, v in value.items():
            if not k or any(c in k + v for c in "\x01\x02"):
                raise ValueError("property names must be non-empty; no \\x01 or \\x02 anywhere")
        return value


class SendResultOut(BaseModel):
    msg_id: str
    unique_key: str
    topic: str
    queue_id: int
    queue_offset: int


# ---- time series and message trace ----------------------------------------------------------

TimeSeriesMetric = Literal[
    "broker_in_rate",
    "broker_out_rate",
    "topic_in_rate",
    "topic_out_rate",
    "group_lag",
    "queue_lag",
    "disk_used_bytes",
    "commitlog_bytes",
    "replication_lag_bytes",
]


class SeriesOut(BaseModel):
    labels: dict[str, str] = Field(description="e.g. {'topic': 'orders'}; empty for a broker-wide series")
    values: list[float | None] = Field(description="one per timestamp; null where nothing was sampled")


class TimeSeriesOut(BaseModel):
    metric: TimeSeriesMetric
    unit: str
    interval_ms: int = Field(description="the sampling interval (timeSeriesSampleInterval)")
    capacity: int = Field(description="points kept per series (the window is capacity x interval)")
    timestamps: list[int] = Field(description="sample times, oldest first (ms)")
    series: list[SeriesOut]


class TraceStoreOut(BaseModel):
    broker: str
    store_host: str
    topic: str
    queue_id: int
    queue_offset: int
    commit_log_offset: int
    store_timestamp: int


class TracePublishOut(BaseModel):
    producer_group: str
    topic: str
    timestamp: int = Field(description="when the producer sent it (ms)")
    cost_ms: int
    success: bool
    store_host: str
    offset_msg_id: str | None
    client_host: str | None = None


class TraceConsumeOut(BaseModel):
    group: str
    request_id: str
    begin_timestamp: int = Field(description="when the consumer handed it to its listener (ms)")
    end_timestamp: int | None = Field(description="when the listener returned (ms); null while unknown")
    cost_ms: int | None
    success: bool | None = Field(description="the listener's verdict; null while unknown")
    retry_times: int
    client_host: str | None = None


class MessageTraceOut(BaseModel):
    msg_id: str
    stored: TraceStoreOut | None = Field(description="where this broker stored it (null: not here)")
    published: list[TracePublishOut]
    consumed: list[TraceConsumeOut]
    trace_records: int = Field(description="trace records found in RMQ_SYS_TRACE_TOPIC for this id")
