"""Broker configuration: RocketMQ's ``broker.conf`` keys, validated by pydantic.

``broker.conf`` is a Java properties file; keys keep RocketMQ's names so an existing file works.
An unknown key gets a warning naming it; a bad value stops start-up with an error naming the key
and the value (:class:`ConfigError`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ferrymq.core.remoting.outbound import Outbound
from ferrymq.core.remoting.tls import ClientAuth, ServerTls, TlsFiles, TlsMode, client_context, server_context

log = logging.getLogger("ferrymq.config")

DEFAULT_DATA_DIR = Path(os.environ.get("FERRYMQ_HOME", Path.home() / ".ferrymq")) / "store"


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names key and value."""


class BrokerConfig(BaseModel):
    """Everything a broker needs; field aliases are the broker.conf keys."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", validate_assignment=True)

    broker_cluster_name: str = Field("DefaultCluster", alias="brokerClusterName", min_length=1)
    broker_name: str = Field("broker-a", alias="brokerName", min_length=1)
    broker_id: int = Field(0, alias="brokerId", ge=0)
    namesrv_addr: str | None = Field(None, alias="namesrvAddr")
    listen_port: int = Field(10911, alias="listenPort", ge=0, le=65535)
    broker_ip1: str = Field("127.0.0.1", alias="brokerIP1")
    #: the address slaves reach the HA port on (RocketMQ's brokerIP2); brokerIP1 when unset
    broker_ip2: str | None = Field(None, alias="brokerIP2")
    #: every listener (remoting, VIP, HA, Kafka, admin) binds here: loopback unless told otherwise
    listen_host: str = Field("127.0.0.1", alias="listenHost")
    store_path_root_dir: Path = Field(DEFAULT_DATA_DIR, alias="storePathRootDir")
    flush_disk_type: Literal["ASYNC_FLUSH", "SYNC_FLUSH"] = Field("ASYNC_FLUSH", alias="flushDiskType")
    file_reserved_time: float = Field(72, alias="fileReservedTime", ge=0)  # hours
    delete_when: str = Field("04", alias="deleteWhen")
    auto_create_topic_enable: bool = Field(True, alias="autoCreateTopicEnable")
    default_topic_queue_nums: int = Field(8, alias="defaultTopicQueueNums", ge=1, le=1024)
    max_message_size: int = Field(4 * 1024 * 1024, alias="maxMessageSize", ge=1, le=1024 * 1024 * 1024)
    # store tuning (RocketMQ MessageStoreConfig names)
    mapped_file_size_commit_log: int = Field(
        1024 * 1024 * 1024, alias="mappedFileSizeCommitLog", ge=64 * 1024
    )
    mapped_file_size_consume_queue: int = Field(300_000 * 20, alias="mappedFileSizeConsumeQueue", ge=20)
    max_hash_slot_num: int = Field(5_000_000, alias="maxHashSlotNum", ge=1)
    max_index_num: int = Field(20_000_000, alias="maxIndexNum", ge=2)
    flush_interval_commit_log: int = Field(500, alias="flushIntervalCommitLog", ge=1)  # ms
    sync_flush_timeout: int = Field(5000, alias="syncFlushTimeout", ge=1)  # ms
    clean_resource_interval: int = Field(10_000, alias="cleanResourceInterval", ge=100)  # ms
    disk_max_used_space_ratio: int = Field(75, alias="diskMaxUsedSpaceRatio", ge=10, le=95)
    # past this the oldest commit-log segments are deleted whatever their age (cleanImmediately)
    disk_space_clean_forcibly_ratio: int = Field(85, alias="diskSpaceCleanForciblyRatio", ge=10, le=100)
    clean_file_forcibly_enable: bool = Field(True, alias="cleanFileForciblyEnable")
    # past this the store refuses writes until the disk is below it again
    disk_space_warning_level_ratio: int = Field(90, alias="diskSpaceWarningLevelRatio", ge=10, le=100)
    flush_consumer_offset_interval: int = Field(5000, alias="flushConsumerOffsetInterval", ge=100)
    # broker groups: master/slave replication (RocketMQ's classic HA; README "Broker groups")
    broker_role: Literal["ASYNC_MASTER", "SYNC_MASTER", "SLAVE"] = Field("ASYNC_MASTER", alias="brokerRole")
    #: the HA port; unset = listenPort+1 (a free port when listenPort is 0)
    ha_listen_port: int | None = Field(None, alias="haListenPort", ge=0, le=65535)
    #: a slave's fixed master HA address (host:port); unset = learnt from REGISTER_BROKER results
    ha_master_address: str | None = Field(None, alias="haMasterAddress")
    #: serve pulls on a slave while the master is alive (a slave always serves them when it is gone)
    slave_read_enable: bool = Field(False, alias="slaveReadEnable")
    #: a consumer further behind the commit-log end than this share of RAM (percent) reads cold
    #: data: with slaveReadEnable its pulls suggest the group's whichBrokerWhenConsumeSlowly
    access_message_in_memory_max_ratio: int = Field(40, alias="accessMessageInMemoryMaxRatio", ge=0, le=100)
    #: a slave corrects a pull's offset as a master does (off: it keeps the consumer's offset)
    offset_check_in_slave: bool = Field(False, alias="offsetCheckInSlave")
    ha_send_heartbeat_interval: int = Field(5000, alias="haSendHeartbeatInterval", ge=10)  # ms
    ha_housekeeping_interval: int = Field(20_000, alias="haHousekeepingInterval", ge=100)  # ms
    ha_transfer_batch_size: int = Field(32 * 1024, alias="haTransferBatchSize", ge=1024, le=4 * 1024 * 1024)
    #: a slave further behind than this (bytes) is not in sync
    ha_max_gap_not_in_sync: int = Field(256 * 1024 * 1024, alias="haMaxGapNotInSync", ge=1)
    #: how long a SYNC_MASTER send waits for a slave's ack (then FLUSH_SLAVE_TIMEOUT)
    slave_timeout: int = Field(3000, alias="slaveTimeout", ge=1)  # ms
    #: readers see only what every in-sync replica acknowledged (the group high watermark,
    #: RocketMQ's confirmOffset); unset = on in controller mode, off in classic mode
    all_ack_in_sync_state_set: bool | None = Field(None, alias="allAckInSyncStateSet")
    #: controller mode, SYNC_MASTER: sends are refused before the append (SYSTEM_ERROR "in-sync
    #: replicas not enough") while the in-sync set, master included, is smaller than this
    min_in_sync_replicas: int = Field(1, alias="minInSyncReplicas", ge=1)
    # controller mode: automatic failover by the name servers' controller (README "Controller mode")
    enable_controller_mode: bool = Field(False, alias="enableControllerMode")
    #: "host:port;host:port": name servers running a controller node
    controller_addr: str | None = Field(None, alias="controllerAddr")
    broker_heartbeat_interval: int = Field(1000, alias="brokerHeartbeatInterval", ge=10)  # ms
    #: silence after which the controller takes this broker for dead (sent in each heartbeat)
    controller_heart_beat_timeout_mills: int = Field(
        10_000, alias="controllerHeartBeatTimeoutMills", ge=100
    )  # ms
    #: how often GET_REPLICA_INFO is polled (RocketMQ: 5000; ferrymq 1000 so a failover is seen soon)
    sync_broker_metadata_period: int = Field(1000, alias="syncBrokerMetadataPeriod", ge=10)  # ms
    #: lower is preferred when several replicas are equally current
    broker_election_priority: int = Field(2**31 - 1, alias="brokerElectionPriority")
    # broker behaviour
    register_name_server_period: int = Field(30_000, alias="registerNameServerPeriod", ge=100)  # ms
    #: the VIP ("fast") remoting port Java slaves pull topic configs from: unset = listenPort-2
    #: (a free port when listenPort is 0), 0 = a free port, -1 = off
    fast_listen_port: int | None = Field(None, alias="fastListenPort", ge=-1, le=65535)
    #: how often a slave copies its master's topics, groups and offsets (ms; RocketMQ 4.x: 10 s)
    slave_sync_interval: int = Field(10_000, alias="slaveSyncInterval", ge=100)
    broker_not_active_timeout_millis: int = Field(120_000, alias="brokerNotActiveTimeoutMillis", ge=100)
    long_polling_enable: bool = Field(True, alias="longPollingEnable")
    short_polling_time_mills: int = Field(1000, alias="shortPollingTimeMills", ge=0)
    max_frame_size: int = Field(16 * 1024 * 1024, alias="serverMaxFrameSize", ge=1024)
    channel_expired_timeout: int = Field(120_000, alias="channelExpiredTimeout", ge=100)  # ms
    #: consume-queue units one pull may scan for matching tags, however many messages it asks for
    max_filter_message_count: int = Field(16_000, alias="maxFilterMessageCount", ge=1)
    #: SQL92 property filters (core/filter/sql92.py); off, SQL92 subscriptions get SYSTEM_ERROR
    #: as RocketMQ answers them (RocketMQ's default is off, ferrymq's on)
    enable_property_filter: bool = Field(True, alias="enablePropertyFilter")
    # what one pull returns at most (at least one message always, so no queue can stall); the
    # byte cap stays below the 16 MiB frame RocketMQ clients accept
    max_transfer_bytes_on_message_in_memory: int = Field(
        256 * 1024, alias="maxTransferBytesOnMessageInMemory", ge=1, le=15 * 1024 * 1024
    )
    max_transfer_count_on_message_in_memory: int = Field(
        32, alias="maxTransferCountOnMessageInMemory", ge=1, le=65_536
    )
    #: long polls one connection may have parked; more are answered SYSTEM_BUSY at once
    max_suspended_pulls_per_connection: int = Field(512, alias="maxSuspendedPullsPerConnection", ge=1)
    # what one client may cost the remoting server (core/remoting/transport.py ServerLimits)
    server_max_connections: int = Field(10_000, alias="serverMaxConnections", ge=1)
    server_channel_max_idle_time_seconds: int = Field(120, alias="serverChannelMaxIdleTimeSeconds", ge=0)
    server_max_in_flight_requests: int = Field(1024, alias="serverMaxInFlightRequests", ge=1)
    # consumers: delay levels, timer messages, retry groups, orderly locks
    message_delay_level: str = Field(
        "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h", alias="messageDelayLevel"
    )
    flush_delay_offset_interval: int = Field(10_000, alias="flushDelayOffsetInterval", ge=100)  # ms
    timer_wheel_enable: bool = Field(True, alias="timerWheelEnable")
    timer_max_delay_sec: int = Field(3 * 24 * 3600, alias="timerMaxDelaySec", ge=1)
    #: timer messages held in memory: those due within this window, at most timerMaxInMemory of them
    timer_memory_window_ms: int = Field(60_000, alias="timerMemoryWindowMs", ge=1000)
    timer_max_in_memory: int = Field(20_000, alias="timerMaxInMemory", ge=16)
    # transactional messages (core/broker/transaction.py): a half message with no decision after
    # transactionTimeOut ms is checked with its producer group every transactionCheckInterval ms,
    # at most transactionCheckMax times, then moved to TRANS_CHECK_MAX_TIME_TOPIC
    transaction_time_out: int = Field(6_000, alias="transactionTimeOut", ge=0)
    transaction_check_max: int = Field(15, alias="transactionCheckMax", ge=1)
    transaction_check_interval: int = Field(30_000, alias="transactionCheckInterval", ge=10)
    #: op records ("<halfOffset>,"...) are written when this many bytes wait, or every interval ms
    transaction_op_msg_max_size: int = Field(4096, alias="transactionOpMsgMaxSize", ge=16)
    transaction_op_batch_interval: int = Field(3_000, alias="transactionOpBatchInterval", ge=1)
    reject_transaction_message: bool = Field(False, alias="rejectTransactionMessage")
    auto_create_subscription_group: bool = Field(True, alias="autoCreateSubscriptionGroup")
    #: a queue lock not renewed for this long is free (Java: -Drocketmq.broker.rebalance.lockMaxLiveTime)
    rebalance_lock_max_live_time: int = Field(60_000, alias="rebalanceLockMaxLiveTime", ge=100)  # ms
    # the Kafka frontend of a master broker: 0 = a free port, -1 = off
    kafka_listen_port: int = Field(9092, alias="kafkaListenPort", ge=-1, le=65535)
    #: the RocketMQ 5 gRPC listener of a master broker (gateway/grpc): 0 = a free port, -1 = off
    grpc_listen_port: int = Field(8081, alias="grpcListenPort", ge=-1, le=65535)
    #: gRPC ReceiveMessage (the proxy's names and defaults): the shortest invisible duration a
    #: receive may ask for, and the bounds a receive's long polling is clamped to
    min_invisible_time_mills_for_recv: int = Field(10_000, alias="minInvisibleTimeMillsForRecv", ge=0)
    grpc_client_consumer_min_long_polling_timeout_millis: int = Field(
        5_000, alias="grpcClientConsumerMinLongPollingTimeoutMillis", ge=0
    )
    grpc_client_consumer_max_long_polling_timeout_millis: int = Field(
        20_000, alias="grpcClientConsumerMaxLongPollingTimeoutMillis", ge=1
    )
    #: the largest gRPC message the listener reads (RESOURCE_EXHAUSTED beyond; the proxy's name);
    #: 0 = maxMessageSize + 1 MiB
    grpc_max_inbound_message_size: int = Field(0, alias="grpcMaxInboundMessageSize", ge=0)
    #: a Telemetry stream that has not sent its settings this long after opening is closed
    grpc_telemetry_settings_timeout_millis: int = Field(
        10_000, alias="grpcTelemetrySettingsTimeoutMillis", ge=1
    )
    #: ReceiveMessage calls one gRPC connection may have parked (long polling) at once; more are
    #: answered TOO_MANY_REQUESTS
    grpc_max_parked_receives_per_connection: int = Field(
        256, alias="grpcMaxParkedReceivesPerConnection", ge=1
    )
    #: the receive batch size a gRPC consumer's Telemetry settings are answered with (the proxy's)
    grpc_client_consumer_long_polling_batch_size: int = Field(
        32, alias="grpcClientConsumerLongPollingBatchSize", ge=1, le=1024
    )
    #: how far a compressed Kafka batch may inflate (produce refuses beyond: MESSAGE_TOO_LARGE)
    kafka_max_inflated_batch_bytes: int = Field(
        32 * 1024 * 1024, alias="kafkaMaxInflatedBatchBytes", ge=64 * 1024, le=1024 * 1024 * 1024
    )
    #: memory for one clean's offset map (Kafka's log.cleaner.dedupe.buffer.size): key digests of
    #: the dirty section, about 136 bytes each; a dirty section with more keys is cleaned in parts
    kafka_cleaner_dedupe_buffer_size: int = Field(
        128 * 1024 * 1024, alias="kafkaCleanerDedupeBufferSize", ge=1024, le=16 * 1024 * 1024 * 1024
    )
    #: an idempotent producer's state is dropped this long after its last write (Kafka's
    #: producer.id.expiration.ms)
    kafka_producer_id_expiration_ms: int = Field(86_400_000, alias="kafkaProducerIdExpirationMs", ge=1)
    #: Kafka transactions: the longest transaction.timeout.ms a producer may ask for (Kafka's
    #: transaction.max.timeout.ms), how often timed-out transactions are aborted
    #: (transaction.abort.timed.out.transaction.cleanup.interval.ms), and how long a finished
    #: transactional id is kept idle (transactional.id.expiration.ms)
    #: Kafka transactions served at all: off, InitProducerId with a transactional id is UNSUPPORTED_VERSION
    #: (idempotent producers are unaffected)
    kafka_transactions_enable: bool = Field(True, alias="kafkaTransactionsEnable")
    kafka_transaction_max_timeout_ms: int = Field(900_000, alias="kafkaTransactionMaxTimeoutMs", ge=1)
    kafka_transaction_abort_check_ms: int = Field(10_000, alias="kafkaTransactionAbortCheckMs", ge=10)
    kafka_transactional_id_expiration_ms: int = Field(
        604_800_000, alias="kafkaTransactionalIdExpirationMs", ge=1
    )
    #: Kafka listeners side by side, e.g. PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9094
    #: (gateway/kafka/listeners.py); empty: one PLAINTEXT listener on listenHost:kafkaListenPort
    kafka_listeners: str = Field("", alias="kafkaListeners")
    #: the SASL mechanisms a SASL listener offers (Kafka's sasl.enabled.mechanisms)
    kafka_sasl_mechanisms: str = Field("PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", alias="kafkaSaslMechanisms")
    #: KIP-368: a SASL session lasts this long, then the client re-authenticates or is closed; 0 = forever
    #: (Kafka's connections.max.reauth.ms)
    kafka_connections_max_reauth_ms: int = Field(0, alias="kafkaConnectionsMaxReauthMs", ge=0)
    #: ACLs are enforced (Kafka's authorizer.class.name set); superUsers (";"-separated principals) may do
    #: anything; allowEveryoneIfNoAclFound opens resources no ACL names
    kafka_authorizer_enable: bool = Field(False, alias="kafkaAuthorizerEnable")
    super_users: str = Field("", alias="superUsers")
    allow_everyone_if_no_acl_found: bool = Field(False, alias="allowEveryoneIfNoAclFound")
    #: the principal this broker logs in as on other brokers' Kafka listeners (gateway/kafka/inter_broker.py;
    #: Kafka's inter-broker JAAS user and sasl.mechanism.inter.broker.protocol); unset: no SASL to brokers
    kafka_inter_broker_user: str | None = Field(None, alias="kafkaInterBrokerUser")
    kafka_inter_broker_password: str | None = Field(None, alias="kafkaInterBrokerPassword")
    kafka_inter_broker_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", alias="kafkaInterBrokerSaslMechanism"
    )
    #: the Kafka listener (by name: its security protocol) other brokers reach this one on, and this one them
    #: (Kafka's inter.broker.listener.name / security.inter.broker.protocol); unset: the first listener
    kafka_inter_broker_listener_name: str | None = Field(None, alias="kafkaInterBrokerListenerName")
    #: client quotas' rate windows (Kafka's quota.window.num and quota.window.size.seconds)
    quota_window_num: int = Field(11, alias="quotaWindowNum", ge=2)
    quota_window_size_seconds: int = Field(1, alias="quotaWindowSizeSeconds", ge=1)
    #: incremental fetch sessions (KIP-227) kept at once (Kafka's max.incremental.fetch.session.cache.slots;
    #: 0 = none, every fetch is a full one)
    kafka_fetch_session_cache_slots: int = Field(1000, alias="kafkaFetchSessionCacheSlots", ge=0)
    #: share groups (KIP-932) over POP: off answers the share APIs' keys absent from ApiVersions
    kafka_share_groups_enable: bool = Field(True, alias="kafkaShareGroupsEnable")
    #: how long a ShareFetch acquires a record (Kafka's group.share.record.lock.duration.ms): POP invisibility
    kafka_share_record_lock_duration_ms: int = Field(
        30_000, alias="kafkaShareRecordLockDurationMs", ge=1000, le=3_600_000
    )
    #: deliveries before a record is archived to the group's DLQ (group.share.delivery.count.limit)
    kafka_share_delivery_count_limit: int = Field(5, alias="kafkaShareDeliveryCountLimit", ge=2, le=10)
    #: where a share group without offsets starts (share.auto.offset.reset): latest or earliest
    kafka_share_auto_offset_reset: Literal["latest", "earliest"] = Field(
        "latest", alias="kafkaShareAutoOffsetReset"
    )
    kafka_share_heartbeat_interval_ms: int = Field(5_000, alias="kafkaShareHeartbeatIntervalMs", ge=1)
    kafka_share_session_timeout_ms: int = Field(45_000, alias="kafkaShareSessionTimeoutMs", ge=1)
    # admin REST API and web console: 0 = a free port, -1 = off
    admin_port: int = Field(8080, alias="adminPort", ge=-1, le=65535)
    #: with a token, every /api call needs ``Authorization: Bearer <token>``
    admin_token: str | None = Field(None, alias="adminToken")
    #: with a token, let reads through without it (only mutating calls need it)
    admin_read_open: bool = Field(False, alias="adminReadOpen")
    #: the console's charts (core/broker/timeseries.py): sample every this many ms, keep this many ms,
    #: record at most this many series (memory: 8 bytes x points x series)
    time_series_sample_interval: int = Field(10_000, alias="timeSeriesSampleInterval", ge=50)
    time_series_retention: int = Field(3_600_000, alias="timeSeriesRetention", ge=1000)
    time_series_max_series: int = Field(2000, alias="timeSeriesMaxSeries", ge=1)

    # RocketMQ ACL 1.0 (README "RocketMQ ACL"): signed requests, accounts in a plain_acl.yml
    acl_enable: bool = Field(False, alias="aclEnable")
    #: the accounts file, re-read when it changes (RocketMQ: $ROCKETMQ_HOME/conf/plain_acl.yml)
    acl_file: Path = Field(DEFAULT_DATA_DIR.parent / "conf" / "plain_acl.yml", alias="aclFile")
    #: the account the broker signs its own requests with (REGISTER_BROKER to the name servers)
    access_key: str | None = Field(None, alias="accessKey")
    secret_key: str | None = Field(None, alias="secretKey")

    # RocketMQ ACL 2.0 (README "RocketMQ ACL 2.0"): users and policies in <storePathRootDir>/config/auth.json
    #: every remoting request signed by an enabled user (the ACL 1.0 signature keyed with its password)
    authentication_enabled: bool = Field(False, alias="authenticationEnabled")
    #: every remoting request allowed by the user's policies (Super users skip them)
    authorization_enabled: bool = Field(False, alias="authorizationEnabled")
    #: JSON {"username","password"}: the Super user created at first start
    init_authentication_user: str | None = Field(None, alias="initAuthenticationUser")
    #: JSON {"accessKey","secretKey"}: what the broker signs its own requests with (unless accessKey is set)
    inner_client_authentication_credentials: str | None = Field(
        None, alias="innerClientAuthenticationCredentials"
    )

    #: admin paths (prefixes, comma-separated) served without the token, e.g. "/healthz,/metrics"
    admin_open_paths: str = Field("", alias="adminOpenPaths")
    #: serve the admin API over HTTPS with tls.server.certPath / tls.server.keyPath
    admin_tls_enable: bool = Field(False, alias="adminTlsEnable")

    # TLS (core/remoting/tls.py; RocketMQ's TlsSystemConfig keys, README "Security")
    #: remoting (broker, VIP port; the name server of `serve`): disabled | permissive | enforcing
    tls_server_mode: TlsMode = Field("disabled", alias="tls.server.mode")
    tls_server_cert_path: str | None = Field(None, alias="tls.server.certPath")
    tls_server_key_path: str | None = Field(None, alias="tls.server.keyPath")
    tls_server_key_password: str | None = Field(None, alias="tls.server.keyPassword")
    tls_server_trust_cert_path: str | None = Field(None, alias="tls.server.trustCertPath")
    tls_server_need_client_auth: ClientAuth = Field("none", alias="tls.server.need.client.auth")
    #: the broker's own connections out (a slave to its master's HA port) use TLS, trusting
    #: tls.client.trustCertPath and presenting tls.client.certPath/keyPath when set
    tls_enable: bool = Field(False, alias="tls.enable")
    tls_client_cert_path: str | None = Field(None, alias="tls.client.certPath")
    tls_client_key_path: str | None = Field(None, alias="tls.client.keyPath")
    tls_client_trust_cert_path: str | None = Field(None, alias="tls.client.trustCertPath")
    #: the HA port (master) speaks TLS with the tls.server files; a slave needs tls.enable too
    ha_tls_enable: bool = Field(False, alias="haTlsEnable")
    #: the SSL and SASL_SSL Kafka listeners' certificate (kafkaListeners above)
    kafka_ssl_cert_path: str | None = Field(None, alias="kafkaSslCertPath")
    kafka_ssl_key_path: str | None = Field(None, alias="kafkaSslKeyPath")
    kafka_ssl_key_password: str | None = Field(None, alias="kafkaSslKeyPassword")
    kafka_ssl_trust_cert_path: str | None = Field(None, alias="kafkaSslTrustCertPath")
    #: Kafka's ssl.client.auth: none | requested | required
    kafka_ssl_client_auth: Literal["none", "requested", "required"] = Field(
        "none", alias="kafkaSslClientAuth"
    )
    # logging (cli/logsetup.py reads them before the rest; the command line and env win)
    log_format: Literal["text", "json"] = Field("text", alias="logFormat")
    #: "LEVEL,logger=LEVEL,..."
    log_level: str = Field("INFO", alias="logLevel")

    # Kafka consumer groups (Apache Kafka's group.* broker settings)
    group_initial_rebalance_delay_ms: int = Field(3000, alias="groupInitialRebalanceDelayMs", ge=0)
    group_min_session_timeout_ms: int = Field(6000, alias="groupMinSessionTimeoutMs", ge=1)
    group_max_session_timeout_ms: int = Field(1_800_000, alias="groupMaxSessionTimeoutMs", ge=1)
    # KIP-848 consumer groups (Kafka's group.consumer.* settings)
    group_consumer_session_timeout_ms: int = Field(45_000, alias="groupConsumerSessionTimeoutMs", ge=1)
    group_consumer_heartbeat_interval_ms: int = Field(5_000, alias="groupConsumerHeartbeatIntervalMs", ge=1)
    #: server-side assignors a member may name ("uniform", "range"); the first is the default
    group_consumer_assignors: str = Field("uniform,range", alias="groupConsumerAssignors")
    #: Kafka's broker.rack: the rack (zone) of this broker group, sent to the name servers as its
    #: RocketMQ zone (__ZONE_NAME) and shown as every Kafka partition's rack it owns (rack-aware
    #: assignment, KIP-881 / KIP-848); a group's master and slaves share one
    broker_rack: str | None = Field(None, alias="brokerRack")
    #: Kafka's group.consumer.migration.policy: disabled, upgrade, downgrade or bidirectional
    group_consumer_migration_policy: str = Field(
        "bidirectional",
        alias="groupConsumerMigrationPolicy",
        pattern="(?i)^(disabled|upgrade|downgrade|bidirectional)$",
    )

    # POP consumption (core/broker/pop): fdatasync the journal before each POP/ACK is answered
    # (survives a power loss; without it a kill -9 loses nothing, the page cache keeps it)
    pop_journal_sync: bool = Field(False, alias="popJournalSync")
    #: QUERY_ASSIGNMENT's mode for a topic/group nobody set with SET_MESSAGE_REQUEST_MODE
    default_message_request_mode: Literal["PULL", "POP"] = Field("PULL", alias="defaultMessageRequestMode")

    #: controller mode: the configured brokerId (the broker's identity in its group) and the role it
    #: takes as master; ``broker_id``/``broker_role`` then follow the role the controller gave it
    _identity: int = PrivateAttr(0)
    _master_role: str = PrivateAttr("ASYNC_MASTER")

    def model_post_init(self, context: object, /) -> None:
        if self.enable_controller_mode:
            self._identity = self.broker_id
            self._master_role = "ASYNC_MASTER" if self.broker_role == "SLAVE" else self.broker_role
            self.__dict__["broker_role"] = "SLAVE"  # fenced until the controller decides

    @model_validator(mode="after")
    def _ha_timeout_exceeds_heartbeat(self) -> BrokerConfig:
        if self.ha_housekeeping_interval <= self.ha_send_heartbeat_interval:
            raise ValueError(
                f"haHousekeepingInterval={self.ha_housekeeping_interval} must exceed haSendHeartbeatInterval="
                f"{self.ha_send_heartbeat_interval}: an idle slave reports once per heartbeat interval and"
                " is dropped after haHousekeepingInterval of silence"
            )
        return self

    @model_validator(mode="after")
    def _role_matches_id(self) -> BrokerConfig:
        if self.enable_controller_mode:
            if self._identity < 1:
                raise ValueError(
                    f"enableControllerMode=true needs brokerId >= 1 (its identity in the group), not"
                    f" {self._identity}; the route id becomes 0 while it is master"
                )
            if not self.controller_addrs:
                raise ValueError("enableControllerMode=true needs controllerAddr (host:port;host:port)")
            return self
        if self.broker_role == "SLAVE" and self.broker_id == 0:
            raise ValueError("brokerRole=SLAVE needs brokerId > 0 (brokerId=0 is the master of the group)")
        if self.broker_role != "SLAVE" and self.broker_id != 0:
            raise ValueError(
                f"brokerId={self.broker_id} with brokerRole={self.broker_role}: a master has brokerId=0,"
                " a slave brokerRole=SLAVE"
            )
        return self

    @model_validator(mode="after")
    def _acl2_credentials(self) -> BrokerConfig:
        """Parse ACL 2.0's JSON keys now, so a typo stops start-up; the inner client's credentials
        become accessKey/secretKey when those are not set."""
        self.init_user()
        inner = _json_pair(self.inner_client_authentication_credentials, "accessKey", "secretKey")
        if inner is not None and not self.access_key:
            self.__dict__["access_key"], self.__dict__["secret_key"] = inner
        return self

    def init_user(self) -> tuple[str, str] | None:
        """``initAuthenticationUser`` as (username, password)."""
        return _json_pair(self.init_authentication_user, "username", "password")

    @model_validator(mode="after")
    def _tls_has_files(self) -> BrokerConfig:
        needs = []
        if self.tls_server_mode != "disabled":
            needs.append(f"tls.server.mode={self.tls_server_mode}")
        if self.admin_tls_enable:
            needs.append("adminTlsEnable=true")
        if self.ha_tls_enable:
            needs.append("haTlsEnable=true")
        if needs and not (self.tls_server_cert_path and self.tls_server_key_path):
            raise ValueError(f"{', '.join(needs)} needs tls.server.certPath and tls.server.keyPath")
        if self.tls_server_need_client_auth != "none" and not self.tls_server_trust_cert_path:
            raise ValueError("tls.server.need.client.auth needs tls.server.trustCertPath")
        return self

    @property
    def tls_server_files(self) -> TlsFiles:
        return TlsFiles(
            self.tls_server_cert_path,
            self.tls_server_key_path,
            self.tls_server_key_password,
            self.tls_server_trust_cert_path,
        )

    def server_tls(self) -> ServerTls | None:
        """The remoting servers' TLS (None when disabled); reads the files, so errors show at start."""
        if self.tls_server_mode == "disabled":
            return None
        context = server_context(self.tls_server_files, self.tls_server_need_client_auth)
        return ServerTls(self.tls_server_mode, context)

    def ha_server_tls(self) -> ssl.SSLContext | None:
        """The master's HA port context (haTlsEnable), None when off."""
        if not self.ha_tls_enable:
            return None
        return server_context(self.tls_server_files, self.tls_server_need_client_auth)

    def ha_client_tls(self) -> ssl.SSLContext | None:
        """A slave's context for its master's HA port (haTlsEnable), None when off."""
        if not self.ha_tls_enable:
            return None
        return client_context(self._client_files)

    @property
    def _client_files(self) -> TlsFiles:
        return TlsFiles(
            self.tls_client_cert_path, self.tls_client_key_path, None, self.tls_client_trust_cert_path
        )

    def client_tls(self) -> ssl.SSLContext | None:
        """The broker's outgoing TLS context (tls.enable), None when off."""
        if not self.tls_enable:
            return None
        return client_context(self._client_files)

    def outbound(self) -> Outbound:
        """How the broker's own remoting connections go out: over TLS with tls.enable, every
        request signed with accessKey/secretKey when set (core/remoting/outbound.py)."""
        return Outbound(self.client_tls(), self.access_key, self.secret_key)

    @field_validator("delete_when")
    @classmethod
    def _hours(cls, value: str) -> str:
        for part in value.split(";"):
            if not part.strip().isdigit() or not 0 <= int(part) <= 23:
                raise ValueError("deleteWhen must be hours 00-23 separated by ';'")
        return value

    @field_validator("message_delay_level")
    @classmethod
    def _delay_levels(cls, value: str) -> str:
        parse_delay_levels(value)
        return value

    @property
    def delay_level_millis(self) -> list[int]:
        """Delay of each level (level 1 first) in milliseconds."""
        return parse_delay_levels(self.message_delay_level)

    @property
    def broker_addr(self) -> str:
        return f"{self.broker_ip1}:{self.listen_port}"

    @property
    def is_slave(self) -> bool:
        return self.broker_role == "SLAVE"

    @property
    def ha_port(self) -> int:
        """The HA port to listen on (0: a free one)."""
        if self.ha_listen_port is not None:
            return self.ha_listen_port
        return self.listen_port + 1 if self.listen_port else 0

    @property
    def ha_server_addr(self) -> str:
        """What REGISTER_BROKER advertises as haServerAddr: brokerIP2:haPort."""
        return f"{self.broker_ip2 or self.broker_ip1}:{self.ha_port}"

    @property
    def vip_port(self) -> int | None:
        """The VIP port to listen on (0: a free one), None when off."""
        if self.fast_listen_port is not None:
            return None if self.fast_listen_port < 0 else self.fast_listen_port
        return max(self.listen_port - 2, 0) if self.listen_port else 0

    @property
    def sync_flush(self) -> bool:
        return self.flush_disk_type == "SYNC_FLUSH"

    @property
    def gate_reads(self) -> bool:
        """Whether reads stop at the group high watermark (allAckInSyncStateSet, README)."""
        if self.all_ack_in_sync_state_set is None:
            return self.enable_controller_mode
        return self.all_ack_in_sync_state_set

    @property
    def controller_addrs(self) -> list[str]:
        return [a.strip() for a in (self.controller_addr or "").split(";") if a.strip()]

    @property
    def controller_identity(self) -> int:
        """Controller mode: the broker's id in its group (its route id while slave)."""
        return self._identity

    @property
    def controller_master_role(self) -> str:
        """Controller mode: the role it takes when elected (brokerRole; SLAVE means ASYNC_MASTER)."""
        return self._master_role

    def switch_role(self, master: bool) -> None:
        """Controller mode, at runtime: master (route id 0, the master role) or slave (route id =
        identity). Written past validation on purpose: the classic role/id rule does not hold."""
        assert self.enable_controller_mode
        self.__dict__["broker_role"] = self._master_role if master else "SLAVE"
        self.__dict__["broker_id"] = 0 if master else self._identity

    @property
    def namesrv_addrs(self) -> list[str]:
        if not self.namesrv_addr:
            return []
        return [a.strip() for a in self.namesrv_addr.split(";") if a.strip()]

    @classmethod
    def from_properties(cls, text: str, **overrides: object) -> BrokerConfig:
        """Build from broker.conf text; unknown keys are logged and ignored."""
        raw = parse_properties(text)
        known = {f.alias or name for name, f in cls.model_fields.items()} | set(cls.model_fields)
        values: dict[str, object] = {}
        for key, value in raw.items():
            if key in known:
                values[key] = value
            else:
                log.warning("broker.conf: unknown key %r ignored", key)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.build(values)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: object) -> BrokerConfig:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        return cls.from_properties(text, **overrides)

    @classmethod
    def build(cls, values: dict[str, object]) -> BrokerConfig:
        """Validate, turning pydantic's error into one that names key and value."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"])
                if not key:  # a rule over several keys names them itself
                    problems.append(str(err["msg"]).removeprefix("Value error, "))
                    continue
                problems.append(f"{key}={values.get(key, err.get('input'))!r}: {err['msg']}")
            raise ConfigError("invalid broker configuration: " + "; ".join(problems)) from None


def parse_properties(text: str) -> dict[str, str]:
    """A Java properties file: ``key=value``, ``key: value`` or ``key value`` lines, ``#``/``!``
    comments. As ``java.util.Properties.load``, the key ends at the first ``=``, ``:`` or
    whitespace; then one ``=``/``:`` may follow, with whitespace around it.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = _PROPERTY_LINE.match(line)
        assert m is not None  # the pattern matches any line
        out[m["key"]] = m["value"].strip()
    return out


_PROPERTY_LINE = re.compile(r"(?P<key>[^=:\s]*)\s*[=:]?\s*(?P<value>.*)")


def _json_pair(text: str | None, first: str, second: str) -> tuple[str, str] | None:
    """Two string fields of a JSON object (ACL 2.0's credentials keys); ValueError if not."""
    if not text:
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        obj = None
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) and obj[k] for k in (first, second)):
        raise ValueError(f"{text!r} is not a JSON object with {first!r} and {second!r}")
    return obj[first], obj[second]


_DELAY_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_delay_levels(text: str) -> list[int]:
    """``messageDelayLevel`` ("1s 5s 10s ... 2h") as milliseconds per level; ValueError if bad."""
    out = []
    for item in text.split():
        unit = _DELAY_UNITS.get(item[-1:])
        if unit is None or not item[:-1].isdigit():
            raise ValueError(f"delay level {item!r} is not <number><s|m|h|d>")
        out.append(int(item[:-1]) * unit)
    if not out:
        raise ValueError("messageDelayLevel needs at least one level")
    return out
