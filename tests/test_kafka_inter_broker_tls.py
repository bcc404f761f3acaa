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
from pathlib import Path
from typing import Any

import pytest
from kio.schema.api_versions.v0.request import ApiVersionsRequest

from ferrymq.core.config import ConfigError
from ferrymq.core.remoting.route import BrokerData
from ferrymq.gateway.kafka.cluster import Node
from ferrymq.gateway.kafka.inter_broker import InterBrokerLink
from ferrymq.gateway.kafka.listeners import SSL, Listener
from ferrymq.gateway.kafka.txn import peer
from ferrymq.namesrv.route_info import RouteInfoManager
from tests.inprocess import kafka_broker
from tests.test_kafka_inter_broker_sasl import CONF, across_two_groups
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


def test_a_transaction_across_broker_groups_over_the_sasl_ssl_inter_broker_listener(
    tmp_path: Path,
) -> None:
    certs = make_certs(tmp_path / "certs")
    across_two_groups(tmp_path, tls_conf(certs), "kafka_sasl_ssl", certs.client())


def test_a_peer_call_to_an_ssl_listener_speaks_tls(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    files: dict[str, Any] = {"kafka_ssl_cert_path": certs.cert, "kafka_ssl_key_path": certs.key}

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
