"""Every Kafka API the frontend serves checks the ACL Apache Kafka 4.x checks: one table, walked in-process.

For each served API key the table names the request, the ACLs it needs (resource type, name, operation, as
KafkaApis / AuthHelper / the coordinators ask) and how a refusal shows (Kafka's error code somewhere in the
response, or the resource left out of a listing). A principal without the ACLs is refused; one holding them
is not. An API key served without a row fails the test, so nothing new can slip in unchecked. The few keys
Kafka serves to anyone (ApiVersions, the SASL steps, DescribeCluster, telemetry) have OPEN rows that say so.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kio.index import load_request_schema
from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import CLUSTER_NAME, AclBinding, Operation, PatternType, Permission, ResourceType
from ferrymq.core.broker.broker import Broker
from ferrymq.gateway.kafka.apis import API_HANDLERS
from ferrymq.gateway.kafka.framing import encode_request
from ferrymq.gateway.kafka.frontend import KafkaFrontend
from ferrymq.gateway.kafka.responses import build
from ferrymq.gateway.kafka.txn.peer import FORWARD_CLIENT_ID
from tests.test_kafka_frontend import TOPIC, Wire, batch, run
from tests.test_kafka_sasl import add_user, plain_login, sasl_port

TOPIC_T, GROUP_T, CLUSTER_T, TXN_T = (
    ResourceType.TOPIC,
    ResourceType.GROUP,
    ResourceType.CLUSTER,
    ResourceType.TRANSACTIONAL_ID,
)
E = ErrorCode
AUTH_ERRORS = {
    E.topic_authorization_failed,
    E.group_authorization_failed,
    E.cluster_authorization_failed,
    E.transactional_id_authorization_failed,
}
GROUP, TXN = "g", "t"
SHARE_MEMBER = "AAAAAAAAAAAAAAAAAAAAAQ"  # a share consumer's member id: its own UUID, base64
MS = datetime.timedelta(milliseconds=1)
Grant = tuple[ResourceType, str, Operation]


def error_codes(obj: Any) -> set[int]:
    """Every ``error_code`` anywhere in a response."""
    out: set[int] = set()
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if f.name == "error_code" or f.name.endswith("_error_code"):
                out.add(int(value))
            else:
                out |= error_codes(value)
    elif isinstance(obj, tuple | list):
        for v in obj:
            out |= error_codes(v)
    return out


@dataclass
class Case:
    """One API's row: its request, the grants that let it through, and what a refusal looks like."""

    key: int
    version: int
    values: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
    grants: list[Grant]
    error: ErrorCode | None = None  # the refusal's code; None: ``hidden`` says what a refusal is
    hidden: Callable[[Any], bool] | None = None
    open_why: str = ""  # OPEN rows: Kafka checks nothing here
    skip_call: bool = False  # an OPEN row exercised elsewhere (the SASL steps)
    extra: dict[str, Any] = field(default_factory=dict)

    def refused(self, response: Any) -> bool:
        if self.hidden is not None:
            return self.hidden(response)
        return self.error in error_codes(response)


def open_row(key: int, version: int, values: dict[str, Any], why: str, skip: bool = False) -> Case:
    return Case(key, version, values, [], open_why=why, skip_call=skip)


def _txn(state: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"transactional_id": TXN, "producer_id": state["pid"], "producer_epoch": state["epoch"], **more}


def alter_configs(key: int, version: int, resource: tuple[ResourceType, str], config: dict[str, Any]) -> Case:
    """(Incremental)AlterConfigs of one topic (ALTER_CONFIGS on it) or of the broker (on the cluster)."""
    resource_type, name = resource
    config_type = 2 if resource_type == TOPIC_T else 4  # Kafka's ConfigResource TOPIC, BROKER
    values = {
        "resources": [{"resource_type": config_type, "resource_name": name, "configs": [config]}],
        "validate_only": True,
    }
    if resource_type == TOPIC_T:
        return Case(
            key, version, values, [(TOPIC_T, name, Operation.ALTER_CONFIGS)], E.topic_authorization_failed
        )
    return Case(
        key,
        version,
        values,
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER_CONFIGS)],
        E.cluster_authorization_failed,
    )


PART0 = [{"partition_index": 0}]
CASES: list[Case] = [
    Case(
        0,
        9,
        {
            "transactional_id": None,
            "acks": 1,
            "timeout": 1000 * MS,
            "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": batch(1)}]}],
        },
        [(TOPIC_T, TOPIC, Operation.WRITE)],
        E.topic_authorization_failed,
    ),
    Case(
        1,
        12,
        {
            "replica_id": -1,
            "max_wait": 0 * MS,
            "min_bytes": 0,
            "max_bytes": 1 << 20,
            "isolation_level": 0,
            "session_id": 0,
            "session_epoch": -1,
            "topics": [
                {
                    "topic": TOPIC,
                    "partitions": [
                        {
                            "partition": 0,
                            "current_leader_epoch": -1,
                            "fetch_offset": 0,
                            "last_fetched_epoch": -1,
                            "log_start_offset": -1,
                            "partition_max_bytes": 1 << 20,
                        }
                    ],
                }
            ],
            "forgotten_topics_data": [],
            "rack_id": "",
        },
        [(TOPIC_T, TOPIC, Operation.READ)],
        E.topic_authorization_failed,
    ),
    Case(
        2,
        7,
        {
            "replica_id": -1,
            "isolation_level": 0,
            "topics": [
                {
                    "name": TOPIC,
                    "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}],
                }
            ],
        },
        [(TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.topic_authorization_failed,
    ),
    Case(
        3,
        12,
        {
            "topics": [{"name": TOPIC, "topic_id": None}],
            "allow_auto_topic_creation": False,
            "include_topic_authorized_operations": False,
        },
        [(TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.topic_authorization_failed,
    ),
    Case(
        8,
        8,
        {
            "group_id": GROUP,
            "generation_id_or_member_epoch": -1,
            "member_id": "",
            "group_instance_id": None,
            "topics": [
                {
                    "name": TOPIC,
                    "partitions": [{"partition_index": 0, "committed_offset": 0, "committed_metadata": ""}],
                }
            ],
        },
        [(GROUP_T, GROUP, Operation.READ), (TOPIC_T, TOPIC, Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        9,
        8,
        {"groups": [{"group_id": GROUP, "topics": None}], "require_stable": False},
        [(GROUP_T, GROUP, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    Case(
        10,
        4,
        {"key_type": 0, "coordinator_keys": [GROUP]},
        [(GROUP_T, GROUP, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    Case(
        11,
        5,
        {
            "group_id": "g2",
            "session_timeout": 10_000 * MS,
            "rebalance_timeout": 10_000 * MS,
            "member_id": "",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": b""}],
        },
        [(GROUP_T, "g2", Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        12,
        4,
        {"group_id": "g2", "generation_id": 0, "member_id": "m", "group_instance_id": None},
        [(GROUP_T, "g2", Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        13,
        5,
        {"group_id": "g2", "members": [{"member_id": "m", "group_instance_id": None}]},
        [(GROUP_T, "g2", Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        14,
        5,
        {
            "group_id": "g2",
            "generation_id": 0,
            "member_id": "m",
            "group_instance_id": None,
            "protocol_type": "consumer",
            "protocol_name": "range",
            "assignments": [],
        },
        [(GROUP_T, "g2", Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        15,
        5,
        {"groups": [GROUP], "include_authorized_operations": False},
        [(GROUP_T, GROUP, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    Case(
        16,
        4,
        {"states_filter": []},
        [(GROUP_T, GROUP, Operation.DESCRIBE)],
        hidden=lambda r: GROUP not in [g.group_id for g in r.groups],
    ),
    open_row(17, 1, {"mechanism": "PLAIN"}, "SASL: tests/test_kafka_sasl.py", skip=True),
    open_row(18, 3, {"client_software_name": "acl-test", "client_software_version": "1"}, "every client"),
    Case(
        19,
        5,
        {
            "topics": [
                {
                    "name": "kt-new",
                    "num_partitions": 1,
                    "replication_factor": 1,
                    "assignments": [],
                    "configs": [],
                }
            ],
            "timeout": 1000 * MS,
            "validate_only": True,
        },
        [(TOPIC_T, "kt-new", Operation.CREATE)],
        E.topic_authorization_failed,
    ),
    Case(
        20,
        6,
        {"topics": [{"name": "kt-del", "topic_id": uuid.UUID(int=0)}], "timeout": 1000 * MS},
        [(TOPIC_T, "kt-del", Operation.DELETE)],
        E.topic_authorization_failed,
    ),
    Case(
        21,
        2,
        {
            "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "offset": 0}]}],
            "timeout": 1000 * MS,
        },
        [(TOPIC_T, TOPIC, Operation.DELETE)],
        E.topic_authorization_failed,
    ),
    Case(
        22,
        4,
        {
            "transactional_id": "t2",
            "transaction_timeout": 60_000 * MS,
            "producer_id": -1,
            "producer_epoch": -1,
        },
        [(TXN_T, "t2", Operation.WRITE)],
        E.transactional_id_authorization_failed,
    ),
    Case(
        23,
        4,
        {
            "replica_id": -1,
            "topics": [
                {
                    "topic": TOPIC,
                    "partitions": [{"partition": 0, "current_leader_epoch": -1, "leader_epoch": 0}],
                }
            ],
        },
        [(TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.topic_authorization_failed,
    ),
    Case(
        24,
        3,
        lambda s: {
            "v3_and_below_transactional_id": TXN,
            "v3_and_below_producer_id": s["pid"],
            "v3_and_below_producer_epoch": s["epoch"],
            "v3_and_below_topics": [{"name": TOPIC, "partitions": [0]}],
        },
        [(TXN_T, TXN, Operation.WRITE), (TOPIC_T, TOPIC, Operation.WRITE)],
        E.transactional_id_authorization_failed,
    ),
    Case(
        25,
        3,
        lambda s: _txn(s, group_id=GROUP),
        [(TXN_T, TXN, Operation.WRITE), (GROUP_T, GROUP, Operation.READ)],
        E.transactional_id_authorization_failed,
    ),
    Case(
        26,
        3,
        lambda s: _txn(s, committed=False),
        [(TXN_T, TXN, Operation.WRITE)],
        E.transactional_id_authorization_failed,
    ),
    Case(
        27,
        1,
        {
            "markers": [
                {
                    "producer_id": 999,
                    "producer_epoch": 0,
                    "transaction_result": False,
                    "topics": [{"name": TOPIC, "partition_indexes": [0]}],
                    "coordinator_epoch": 0,
                }
            ]
        },
        [(CLUSTER_T, CLUSTER_NAME, Operation.CLUSTER_ACTION)],
        E.cluster_authorization_failed,
    ),
    Case(
        28,
        3,
        lambda s: _txn(
            s,
            group_id=GROUP,
            generation_id=-1,
            member_id="",
            group_instance_id=None,
            topics=[
                {
                    "name": TOPIC,
                    "partitions": [
                        {
                            "partition_index": 0,
                            "committed_offset": 0,
                            "committed_leader_epoch": -1,
                            "committed_metadata": "",
                        }
                    ],
                }
            ],
        ),
        [(TXN_T, TXN, Operation.WRITE), (GROUP_T, GROUP, Operation.READ)],
        E.transactional_id_authorization_failed,
    ),
    Case(
        29,
        3,
        {
            "resource_type_filter": 1,
            "resource_name_filter": None,
            "pattern_type_filter": 1,
            "principal_filter": None,
            "host_filter": None,
            "operation": 1,
            "permission_type": 1,
        },
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE)],
        E.cluster_authorization_failed,
    ),
    Case(
        30,
        3,
        {
            "creations": [
                {
                    "resource_type": 2,
                    "resource_name": "x",
                    "resource_pattern_type": 3,
                    "principal": "User:x",
                    "host": "*",
                    "operation": 3,
                    "permission_type": 3,
                }
            ]
        },
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER)],
        E.cluster_authorization_failed,
    ),
    Case(
        31,
        3,
        {
            "filters": [
                {
                    "resource_type_filter": 2,
                    "resource_name_filter": "x",
                    "pattern_type_filter": 3,
                    "principal_filter": "User:x",
                    "host_filter": "*",
                    "operation": 3,
                    "permission_type": 3,
                }
            ]
        },
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER)],
        E.cluster_authorization_failed,
    ),
    Case(
        32,
        4,
        {"resources": [{"resource_type": 2, "resource_name": TOPIC, "configuration_keys": None}]},
        [(TOPIC_T, TOPIC, Operation.DESCRIBE_CONFIGS)],
        E.topic_authorization_failed,
    ),
    Case(
        32,
        4,
        {"resources": [{"resource_type": 4, "resource_name": "", "configuration_keys": None}]},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE_CONFIGS)],
        E.cluster_authorization_failed,
    ),
    alter_configs(33, 2, (TOPIC_T, TOPIC), {"name": "retention.ms", "value": "1000"}),
    alter_configs(33, 2, (CLUSTER_T, ""), {"name": "x", "value": "1"}),
    Case(
        35,
        4,
        {"topics": None},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE)],
        E.cluster_authorization_failed,
    ),
    open_row(36, 2, {"auth_bytes": b""}, "SASL: tests/test_kafka_sasl.py", skip=True),
    Case(
        37,
        3,
        {
            "topics": [{"name": TOPIC, "count": 3, "assignments": None}],
            "timeout": 1000 * MS,
            "validate_only": True,
        },
        [(TOPIC_T, TOPIC, Operation.ALTER)],
        E.topic_authorization_failed,
    ),
    Case(
        42, 2, {"groups_names": ["gdel"]}, [(GROUP_T, "gdel", Operation.DELETE)], E.group_authorization_failed
    ),
    Case(
        43,
        2,
        {"election_type": 0, "topic_partitions": None, "timeout": 1000 * MS},
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER)],
        E.cluster_authorization_failed,
    ),
    alter_configs(44, 1, (TOPIC_T, TOPIC), {"name": "retention.ms", "config_operation": 0, "value": "1000"}),
    alter_configs(44, 1, (CLUSTER_T, ""), {"name": "x", "config_operation": 0, "value": "1"}),
    Case(
        45,
        0,
        {"timeout": 1000 * MS, "topics": []},
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER)],
        E.cluster_authorization_failed,
    ),
    Case(
        46,
        0,
        {"timeout": 1000 * MS, "topics": None},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE)],
        E.cluster_authorization_failed,
    ),
    Case(
        47,
        0,
        {"group_id": GROUP, "topics": [{"name": TOPIC, "partitions": PART0}]},
        [(GROUP_T, GROUP, Operation.DELETE), (TOPIC_T, TOPIC, Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        48,
        1,
        {"components": [], "strict": False},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE_CONFIGS)],
        E.cluster_authorization_failed,
    ),
    Case(
        49,
        1,
        {
            "entries": [
                {
                    "entity": [{"entity_type": "user", "entity_name": "x"}],
                    "ops": [{"key": "producer_byte_rate", "value": 1000.0, "remove": False}],
                }
            ],
            "validate_only": True,
        },
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER_CONFIGS)],
        E.cluster_authorization_failed,
    ),
    Case(
        50,
        0,
        {"users": None},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE)],
        E.cluster_authorization_failed,
    ),
    Case(
        51,
        0,
        {"deletions": [{"name": "nobody", "mechanism": 1}], "upsertions": []},
        [(CLUSTER_T, CLUSTER_NAME, Operation.ALTER)],
        E.cluster_authorization_failed,
    ),
    Case(
        55,
        2,
        {"topics": [{"topic_name": "__cluster_metadata", "partitions": PART0}]},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE)],
        E.cluster_authorization_failed,
    ),
    open_row(
        60,
        1,
        {"include_cluster_authorized_operations": False, "endpoint_type": 1},
        "Kafka answers it to anyone (it only computes authorized operations when asked)",
    ),
    Case(
        61,
        0,
        {"topics": [{"name": TOPIC, "partition_indexes": [0]}]},
        [(TOPIC_T, TOPIC, Operation.READ)],
        E.topic_authorization_failed,
    ),
    Case(
        65,
        0,
        {"transactional_ids": [TXN]},
        [(TXN_T, TXN, Operation.DESCRIBE)],
        E.transactional_id_authorization_failed,
    ),
    Case(
        66,
        1,
        {"state_filters": [], "producer_id_filters": [], "duration_filter": -1},
        [(TXN_T, TXN, Operation.DESCRIBE)],
        hidden=lambda r: TXN not in [t.transactional_id for t in r.transaction_states],
    ),
    Case(
        68,
        0,
        {
            "group_id": "g3",
            "member_id": "",
            "member_epoch": 0,
            "instance_id": None,
            "rack_id": None,
            "rebalance_timeout": 10_000 * MS,
            "subscribed_topic_names": [TOPIC],
            "server_assignor": None,
            "topic_partitions": [],
        },
        [(GROUP_T, "g3", Operation.READ), (TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    Case(
        69,
        0,
        {"group_ids": [GROUP], "include_authorized_operations": False},
        [(GROUP_T, GROUP, Operation.DESCRIBE), (TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    open_row(71, 0, {"client_instance_id": uuid.UUID(int=0)}, "KIP-714: Kafka checks no ACL"),
    open_row(
        72,
        0,
        {
            "client_instance_id": uuid.UUID(int=1),
            "subscription_id": 0,
            "terminating": False,
            "compression_type": 0,
            "metrics": b"",
        },
        "KIP-714: Kafka checks no ACL",
    ),
    Case(
        74,
        1,
        {"resource_types": []},
        [(CLUSTER_T, CLUSTER_NAME, Operation.DESCRIBE_CONFIGS)],
        E.cluster_authorization_failed,
    ),
    Case(
        76,
        1,
        {
            "group_id": "gs",
            "member_id": SHARE_MEMBER,
            "member_epoch": 0,
            "rack_id": None,
            "subscribed_topic_names": [TOPIC],
        },
        [(GROUP_T, "gs", Operation.READ), (TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    Case(
        77,
        1,
        {"group_ids": ["gs"], "include_authorized_operations": False},
        [(GROUP_T, "gs", Operation.DESCRIBE), (TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.group_authorization_failed,
    ),
    Case(
        78,
        1,
        {
            "group_id": "gs",
            "member_id": SHARE_MEMBER,
            "share_session_epoch": 0,
            "max_wait": 0 * MS,
            "min_bytes": 0,
            "max_bytes": 1 << 20,
            "max_records": 10,
            "batch_size": 10,
            "topics": [],
            "forgotten_topics_data": [],
        },
        [(GROUP_T, "gs", Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        79,
        1,
        {"group_id": "gs", "member_id": SHARE_MEMBER, "share_session_epoch": 1, "topics": []},
        [(GROUP_T, "gs", Operation.READ)],
        E.group_authorization_failed,
    ),
    Case(
        75,
        0,
        {"topics": [{"name": TOPIC}], "response_partition_limit": 10, "cursor": None},
        [(TOPIC_T, TOPIC, Operation.DESCRIBE)],
        E.topic_authorization_failed,
    ),
]


def test_every_served_api_key_has_a_row() -> None:
    served = set(API_HANDLERS)
    rows = {c.key for c in CASES}
    assert served - rows == set(), "API keys served without an ACL row in tests/test_kafka_acl_coverage.py"
    assert rows - served == set()
    for c in CASES:
        assert API_HANDLERS[c.key].serves(c.version), (c.key, c.version)


def binding(principal: str, grant: Grant) -> AclBinding:
    resource_type, name, operation = grant
    return AclBinding(resource_type, name, PatternType.LITERAL, principal, "*", operation, Permission.ALLOW)


def request_of(case: Case, state: dict[str, Any]) -> Any:
    values = case.values(state) if callable(case.values) else case.values
    return build(load_request_schema(case.key, case.version), values)


async def prepare(broker: Broker, wire: Wire) -> dict[str, Any]:
    """As a principal allowed everything: a transactional id and a consumer group the rows name."""
    authorizer = broker.security.authorizer
    assert authorizer is not None
    everything = [
        binding("User:granted", (rt, "*", Operation.ALL)) for rt in (TOPIC_T, GROUP_T, CLUSTER_T, TXN_T)
    ]
    authorizer.set_bindings("coverage-test", everything)
    broker.topics.create_if_absent("kt-del", 1)
    init = build(
        load_request_schema(22, 4),
        {
            "transactional_id": TXN,
            "transaction_timeout": 60_000 * MS,
            "producer_id": -1,
            "producer_epoch": -1,
        },
    )
    r = await wire.call(init)
    assert r.error_code == E.none
    heartbeat = next(c for c in CASES if c.key == 68)
    joined = await wire.call(
        build(load_request_schema(68, 0), {**heartbeat.values, "group_id": GROUP})  # type: ignore[dict-item]
    )
    assert joined.error_code == E.none
    authorizer.set_bindings("coverage-test", [])
    return {"pid": r.producer_id, "epoch": r.producer_epoch}


def test_each_api_refuses_a_principal_without_its_acl_and_serves_one_with_it(tmp_path: Path) -> None:
    async def body(broker: Broker, f: KafkaFrontend) -> None:
        add_user(broker, "denied", "pw")
        add_user(broker, "granted", "pw")
        port = sasl_port(f)
        denied, ok1 = await plain_login(port, "denied", "pw")
        granted, ok2 = await plain_login(port, "granted", "pw")
        assert ok1.error_code == ok2.error_code == E.none  # type: ignore[attr-defined]
        authorizer = broker.security.authorizer
        assert authorizer is not None
        state = await prepare(broker, granted)
        failures = []
        for case in CASES:
            if case.skip_call:
                continue
            authorizer.set_bindings("coverage-test", [])
            refused = await denied.call(request_of(case, state))
            if case.open_why:
                if error_codes(refused) & AUTH_ERRORS:
                    failures.append(f"{case.key}: OPEN in Kafka, refused here")
                continue
            if not case.refused(refused):
                failures.append(f"{case.key}: not refused without {case.grants}: {refused}")
            authorizer.set_bindings("coverage-test", [binding("User:granted", g) for g in case.grants])
            served = await granted.call(request_of(case, state))
            if case.refused(served):
                failures.append(f"{case.key}: refused with {case.grants}: {served}")
        denied.close()
        granted.close()
        assert not failures, "\n".join(failures)

    run(
        tmp_path,
        body,
        kafka_listeners="SASL_PLAINTEXT://127.0.0.1:0",
        kafka_authorizer_enable=True,
        kafka_share_groups_enable=True,
    )


def test_a_client_naming_the_forwarding_client_id_is_checked_as_a_client(tmp_path: Path) -> None:
    """TxnOffsetCommit's forwarded form skips the member checks; only a principal with CLUSTER_ACTION (the
    inter-broker one) may send it, so a client cannot commit for a group it is not a member of."""

    async def body(broker: Broker, f: KafkaFrontend) -> None:
        add_user(broker, "granted", "pw")
        wire, ok = await plain_login(sasl_port(f), "granted", "pw")
        assert ok.error_code == E.none  # type: ignore[attr-defined]
        state = await prepare(broker, wire)
        authorizer = broker.security.authorizer
        assert authorizer is not None
        authorizer.set_bindings(
            "coverage-test",
            [
                binding("User:granted", g)
                for g in [(TXN_T, TXN, Operation.WRITE), (GROUP_T, GROUP, Operation.READ)]
            ],
        )
        commit = next(c for c in CASES if c.key == 28)
        request = dataclasses.replace(request_of(commit, state), member_id="not-a-member", generation_id=7)
        wire.writer.write(encode_request(request, 99, FORWARD_CLIENT_ID))
        _, response = await wire.receive(type(request))
        codes = error_codes(response)
        assert codes & {E.unknown_member_id, E.illegal_generation, E.fenced_member_epoch}, codes
        wire.close()

    run(tmp_path, body, kafka_listeners="SASL_PLAINTEXT://127.0.0.1:0", kafka_authorizer_enable=True)
