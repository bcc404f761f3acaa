"""Broker-to-broker Kafka requests go to the other broker's ``kafkaInterBrokerListenerName`` listener and
speak its security protocol (Kafka's inter.broker.listener.name).

Two broker groups whose only Kafka listeners are SSL (first) and SASL_SSL, the inter-broker listener SASL_SSL,
an authorizer on with ACLs for the application user alone: a transaction coordinated by broker-a writes a
partition broker-b leads (WriteTxnMarkers a -> b) and commits offsets of a group broker-b coordinates
(TxnOffsetCommit forwarded b -> a); both cross over TLS, logged in as the inter-broker user, to the SASL_SSL
port. Before the setting the calls went over plain TCP to the first listener (SSL), which closed them, and the
transaction hung in PrepareCommit. The in-process tests: a peer call over TLS to an SSL-only listener, and the
start-up refusal of a listener name the broker does not have.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from kio.schema.api_versions.v0.request import ApiVersionsRequest

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.core.config import ConfigError
from ferrymq.core.remoting.route import BrokerData
from ferrymq.gateway.kafka.cluster import Node
from ferrymq.gateway.kafka.inter_broker import InterBrokerLink
from ferrymq.gateway.kafka.listeners import SSL, Listener
from ferrymq.gateway.kafka.txn import peer
from ferrymq.namesrv.route_info import RouteInfoManager
from tests import cluster_helpers
from tests.inprocess import kafka_broker
from tests.test_kafka_inter_broker_sasl import BOTH, CONF, bootstrap, transaction
from tests.test_kafka_multi_broker import (
    create_topic,
    group_coordinated_by,
    kafka_routed,
    port_of,
    query_offset,
)
from tests.tls_certs import TlsCerts, make_certs

pytestmark = pytest.mark.timeout(60)


def tls_conf(certs: TlsCerts) -> dict[str, str]:
    return {
        **CONF,
        "kafkaListeners": "SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "kafkaInterBrokerListenerName": "SASL_SSL",
        "kafkaSslCertPath": certs.cert,
        "kafkaSslKeyPath": certs.key,
        "kafkaSslTrustCertPath": certs.ca,
    }


def test_a_transaction_across_broker_groups_goes_over_the_sasl_ssl_inter_broker_listener(
    tmp_path: Path,
) -> None:
    certs = make_certs(tmp_path / "certs")
    topic = f"KafkaTls-{uuid.uuid4().hex[:8]}"
    tid = group_coordinated_by(BOTH, "broker-a")
    group = group_coordinated_by(BOTH, "broker-b")
    for d in ("a/store", "b/store"):
        bootstrap(tmp_path / d, topic, tid, group)
    conf = tls_conf(certs)
    with FerryServer(tmp_path / "a", "".join(f"{k}={v}\n" for k, v in conf.items())) as server:
        broker_b = FerryBroker(tmp_path / "b", server.namesrv_addr, "broker-b", kafka=True, conf=conf)
        try:
            create_topic(server.broker_addr, topic)
            create_topic(broker_b.addr, topic)
            cluster_helpers.eventually(lambda: kafka_routed(server.namesrv_addr, topic), 15.0, "both routed")
            ports = server.ports["kafka_sasl_ssl"], port_of(broker_b.kafka_listeners["kafka_sasl_ssl"])
            asyncio.run(transaction(*ports, topic, tid, group, certs.client()))
            assert query_offset(broker_b.addr, group, topic, 0) == 5  # the forwarded offset landed
        finally:
            broker_b.stop()


def test_a_peer_call_to_an_ssl_listener_speaks_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    files = {"kafka_ssl_cert_path": certs.cert, "kafka_ssl_key_path": certs.key}

    async def body() -> None:
        async with kafka_broker(tmp_path, "t", 1, kafka_listeners="SSL://127.0.0.1:0", **files) as (_, fe):
            port = fe.listener_ports()[SSL]
            node = Node(1, "127.0.0.1", port, listeners=(Listener(SSL, "127.0.0.1", port),))
            link = InterBrokerLink(SSL, None, certs.client())
            assert await peer.call(node, ApiVersionsRequest(), link) is not None
            plain = InterBrokerLink(None, None, None)  # the first listener, its protocol unknown: plain TCP
            assert await peer.call(Node(1, "127.0.0.1", port), ApiVersionsRequest(), plain) is None

    asyncio.run(body())


def test_an_inter_broker_listener_the_broker_does_not_have_is_refused_at_start(tmp_path: Path) -> None:
    async def body() -> None:
        async with kafka_broker(
            tmp_path,
            "t",
            1,
            kafka_listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            kafka_inter_broker_listener_name="SSL",
        ):
            pass

    with pytest.raises(ConfigError, match=r"kafkaInterBrokerListenerName=SSL .*PLAINTEXT, SASL_PLAINTEXT"):
        asyncio.run(body())


def test_the_name_server_keeps_each_members_kafka_listeners() -> None:
    routes = RouteInfoManager()
    text = "SSL://10.0.0.5:9093,SASL_SSL://10.0.0.5:9094"
    routes.register_broker("c", "10.0.0.5:10911", "b", 0, "10.0.0.5:10912", kafka_listeners=text)
    routes.register_broker("c", "10.0.0.6:10911", "b", 1, "10.0.0.6:10912")
    data = BrokerData.from_json(
        json.loads(json.dumps(routes.cluster_info().broker_addr_table["b"].to_json()))
    )
    assert data.kafka_listeners == {0: text}  # what ClusterView reads for the peer's Node.listeners
    routes.unregister_broker("c", "10.0.0.5:10911", "b", 0)
    assert routes.broker_addr_table["b"].kafka_listeners == {}
