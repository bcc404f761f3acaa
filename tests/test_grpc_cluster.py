"""The gRPC listener in a cluster: QueryRoute on any broker's listener names every broker group's
master by its own gRPC listener (learnt from the name server's ``grpcAddrs``), and a slave serves
one too: routes (naming the masters) and reads, while a send to it is refused as the broker
refuses a remoting send on a slave."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from ferrymq.cli.testing import FerryBroker, FerryServer
from ferrymq.gateway.grpc.protocol import definition_pb2 as pb
from ferrymq.gateway.grpc.protocol import service_pb2 as spb
from ferrymq.gateway.grpc.protocol.service_pb2_grpc import MessagingServiceStub
from tests.cluster_helpers import create_topic, eventually

TOPIC = "GrpcSpread"


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[FerryServer, FerryBroker, FerryBroker]]:
    tmp = Path(tmp_path_factory.mktemp("grpc-cluster"))
    with FerryServer(tmp / "a", grpc=True) as srv:
        assert srv.ha_addr is not None
        slave_conf = {"brokerRole": "SLAVE", "brokerId": "1", "haMasterAddress": srv.ha_addr}
        with ThreadPoolExecutor(2) as pool:  # both at once: half the wait
            starting_slave = pool.submit(
                FerryBroker, tmp / "a-slave", srv.namesrv_addr, "broker-a", conf=slave_conf, grpc=True
            )
            starting_other = pool.submit(FerryBroker, tmp / "b", srv.namesrv_addr, "broker-b", grpc=True)
            slave, other = starting_slave.result(), starting_other.result()
        try:
            create_topic(srv.broker_addr, TOPIC, 2)
            create_topic(other.addr, TOPIC, 3)
            yield srv, slave, other
        finally:
            with ThreadPoolExecutor(2) as pool:
                list(pool.map(FerryBroker.stop, (slave, other)))


def route_of(endpoint: str) -> dict[str, tuple[int, int]]:
    """broker name -> (its endpoint's port, how many queues) as a QueryRoute on ``endpoint`` says."""
    with grpc.insecure_channel(endpoint) as channel:
        answer = MessagingServiceStub(channel).QueryRoute(
            spb.QueryRouteRequest(topic=pb.Resource(name=TOPIC)), timeout=10
        )
    out: dict[str, tuple[int, int]] = {}
    for q in answer.message_queues:
        port, count = out.get(q.broker.name, (q.broker.endpoints.addresses[0].port, 0))
        out[q.broker.name] = (port, count + 1)
    return out


def test_query_route_names_every_groups_master_listener(
    cluster: tuple[FerryServer, FerryBroker, FerryBroker],
) -> None:
    srv, slave, other = cluster
    assert slave.grpc_endpoint is not None and other.grpc_endpoint is not None
    b_port = int(other.grpc_endpoint.rpartition(":")[2])
    want = {"broker-a": (srv.grpc_port, 2), "broker-b": (b_port, 3)}
    eventually(lambda: route_of(srv.grpc_endpoint) == want, 15.0, "both groups in the route")
    assert route_of(other.grpc_endpoint) == want
    eventually(lambda: route_of(slave.grpc_endpoint) == want, 15.0, "the slave's route names the masters")


def test_a_send_to_a_slaves_listener_is_refused(
    cluster: tuple[FerryServer, FerryBroker, FerryBroker],
) -> None:
    _, slave, _ = cluster
    assert slave.grpc_endpoint is not None
    message = pb.Message(topic=pb.Resource(name=TOPIC), body=b"to a slave")
    message.system_properties.message_id = "01ABCDEF"
    message.system_properties.message_type = pb.NORMAL
    with grpc.insecure_channel(slave.grpc_endpoint) as channel:
        sent = MessagingServiceStub(channel).SendMessage(
            spb.SendMessageRequest(messages=[message]), timeout=10
        )
    assert sent.status.code == pb.INTERNAL_SERVER_ERROR, sent
    assert "slave" in sent.status.message.lower() or "forbidden" in sent.status.message.lower(), sent
