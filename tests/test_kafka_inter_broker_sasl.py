"""Broker-to-broker Kafka requests on a SASL cluster log in as the inter-broker principal, never ANONYMOUS.

Two broker groups (``ferrymq serve`` = broker-a, a ``ferrymq broker`` = broker-b), each with only a
SASL_PLAINTEXT Kafka listener, an authorizer on and ACLs for the application user alone (nothing for
ANONYMOUS, no super users configured). A transaction coordinated by broker-a writes a partition broker-b
leads (WriteTxnMarkers a -> b, CLUSTER_ACTION) and commits offsets of a group broker-b coordinates
(TxnOffsetCommit forwarded b -> a): both cross with ``kafkaInterBrokerUser`` and the transaction completes.
Before inter_broker.py the calls went without SASL, the listener closed them and the transaction hung in
PrepareCommit.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid
from pathlib import Path

import pytest
from kio.schema.add_offsets_to_txn.v3.request import AddOffsetsToTxnRequest
from kio.schema.add_partitions_to_txn.v3.request import AddPartitionsToTxnRequest, AddPartitionsToTxnTopic
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest
from kio.schema.end_txn.v3.request import EndTxnRequest
from kio.schema.errors import ErrorCode
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.txn_offset_commit.v3.request import (
    TxnOffsetCommitRequest,
    TxnOffsetCommitRequestPartition,
    TxnOffsetCommitRequestTopic,
)

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.core.auth.acl import AclBinding, Authorizer, Operation, PatternType, Permission, ResourceType
from ferrymq.core.auth.acl_store import AclStore
from ferrymq.core.auth.scram import ScramCredentials, make_credential
from tests import cluster_helpers
from tests.test_kafka_frontend import Wire, ms
from tests.test_kafka_multi_broker import (
    create_topic,
    group_coordinated_by,
    kafka_routed,
    port_of,
    query_offset,
)
from tests.test_kafka_sasl import plain_login

pytestmark = pytest.mark.timeout(60)
BOTH = ["broker-a", "broker-b"]
APP, APP_PW = "app", "app-secret"
CONF = {
    "kafkaListeners": "SASL_PLAINTEXT://127.0.0.1:0",
    "kafkaAuthorizerEnable": "true",
    "kafkaInterBrokerUser": "broker",
    "kafkaInterBrokerPassword": "broker-secret",
    "kafkaInterBrokerSaslMechanism": "SCRAM-SHA-512",
}


def bootstrap(store: Path, topic: str, tid: str, group: str) -> None:
    """Users and ACLs written before the broker starts (as kafka-storage format --add-scram does)."""
    (store / "config").mkdir(parents=True, exist_ok=True)
    users = ScramCredentials(store / "config" / "users.json")
    for user, password in ((APP, APP_PW), ("broker", "broker-secret")):
        for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            users.upsert(user, mech, make_credential(mech, password))
    grants = [
        (ResourceType.TOPIC, topic, Operation.WRITE),
        (ResourceType.TRANSACTIONAL_ID, tid, Operation.WRITE),
        (ResourceType.GROUP, group, Operation.READ),
    ]
    AclStore(store / "config" / "acls.json", Authorizer()).create(
        AclBinding(rt, name, PatternType.LITERAL, f"User:{APP}", "*", op, Permission.ALLOW)
        for rt, name, op in grants
    )


async def completed(wire: Wire, tid: str) -> str:
    """The transaction's state once it leaves Prepare* (or the last seen after 15 s)."""
    deadline = time.monotonic() + 15
    while True:
        (state,) = (await wire.call(DescribeTransactionsRequest(transactional_ids=(tid,)))).transaction_states
        if not state.transaction_state.startswith("Prepare") or time.monotonic() > deadline:
            return str(state.transaction_state)
        await asyncio.sleep(0.05)


def test_a_transaction_across_broker_groups_on_sasl_listeners_without_anonymous_acls(tmp_path: Path) -> None:
    across_two_groups(tmp_path, CONF)


def across_two_groups(
    tmp_path: Path, conf: dict[str, str], listener: str = "kafka", tls: ssl.SSLContext | None = None
) -> None:
    """broker-a (serve) and broker-b with ``conf``; the application's transaction on each one's ``listener``
    (its ready-line name: "kafka" is the first, "kafka_sasl_ssl" the SASL_SSL one), over ``tls`` if given."""
    topic = f"KafkaSasl-{uuid.uuid4().hex[:8]}"
    tid = group_coordinated_by(BOTH, "broker-a")  # the same hash names the transaction coordinator
    group = group_coordinated_by(BOTH, "broker-b")
    for d in ("a/store", "b/store"):
        bootstrap(tmp_path / d, topic, tid, group)
    conf_text = "".join(f"{k}={v}\n" for k, v in conf.items())
    with FerryServer(tmp_path / "a", conf_text) as server:
        broker_b = FerryBroker(tmp_path / "b", server.namesrv_addr, "broker-b", kafka=True, conf=conf)
        try:
            create_topic(server.broker_addr, topic)
            create_topic(broker_b.addr, topic)
            cluster_helpers.eventually(lambda: kafka_routed(server.namesrv_addr, topic), 15.0, "both routed")
            b_addr = broker_b.kafka_bootstrap if listener == "kafka" else broker_b.kafka_listeners[listener]
            assert b_addr is not None
            ports = server.ports[listener], port_of(b_addr)
            asyncio.run(transaction(*ports, topic, tid, group, tls))
            # partition 2 is broker-b's queue 0: the offset committed in the transaction is stored there
            assert query_offset(broker_b.addr, group, topic, 0) == 5
        finally:
            broker_b.stop()


async def transaction(
    a_port: int, b_port: int, topic: str, tid: str, group: str, tls: ssl.SSLContext | None = None
) -> None:
    """The application's transaction (on ``tls`` listeners when given): a partition of broker-b's, offsets
    of a group broker-b coordinates, committed at broker-a."""
    a, ok_a = await plain_login(a_port, APP, APP_PW, tls)
    b, ok_b = await plain_login(b_port, APP, APP_PW, tls)
    assert ok_a.error_code == ok_b.error_code == ErrorCode.none  # type: ignore[attr-defined]
    init = await a.call(InitProducerIdRequest(transactional_id=tid, transaction_timeout=ms(60_000)))
    assert init.error_code == ErrorCode.none
    pid, epoch = init.producer_id, init.producer_epoch
    added = await a.call(
        AddPartitionsToTxnRequest(
            v3_and_below_transactional_id=tid,
            v3_and_below_producer_id=pid,
            v3_and_below_producer_epoch=epoch,
            v3_and_below_topics=(AddPartitionsToTxnTopic(name=topic, partitions=(3,)),),  # broker-b's
        )
    )
    assert added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == 0
    offsets = AddOffsetsToTxnRequest(
        transactional_id=tid, producer_id=pid, producer_epoch=epoch, group_id=group
    )
    assert (await a.call(offsets)).error_code == ErrorCode.none
    part = TxnOffsetCommitRequestPartition(partition_index=2, committed_offset=5, committed_metadata="")
    commit = TxnOffsetCommitRequest(
        transactional_id=tid,
        group_id=group,
        producer_id=pid,
        producer_epoch=epoch,
        topics=(TxnOffsetCommitRequestTopic(name=topic, partitions=(part,)),),
    )
    # broker-b coordinates the group and forwards the offsets to broker-a, as the broker principal
    assert (await b.call(commit)).topics[0].partitions[0].error_code == ErrorCode.none
    end = EndTxnRequest(transactional_id=tid, producer_id=pid, producer_epoch=epoch, committed=True)
    assert (await a.call(end)).error_code == ErrorCode.none
    # the marker for partition 3 goes to broker-b as WriteTxnMarkers, as the broker principal
    assert await completed(a, tid) == "CompleteCommit"
    a.close()
    b.close()
