"""The multi-host lab itself, and broker liveness across hosts: a name server drops a broker whose
cable is pulled (no FIN ever arrives: only the heartbeat timeout can tell) and takes it back when
the cable returns; a partition between broker and name server alone leaves clients able to send."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.client import Message, Producer
from tests.cluster_helpers import create_topic, eventually, routed
from tests.netns import NetLab, require_netns

pytestmark = pytest.mark.process


@pytest.fixture
def lab() -> Iterator[NetLab]:
    require_netns()
    with NetLab() as lab:
        yield lab


def test_broker_on_another_host_is_dropped_when_silent_and_returns(lab: NetLab, tmp_path: Path) -> None:
    ns_host, b_host = lab.add_host("ns"), lab.add_host("b")
    ns_host.namesrv(tmp_path / "ns")
    namesrv = f"{ns_host.ip}:9876"
    conf = {"brokerNotActiveTimeoutMillis": "2000", "registerNameServerPeriod": "500"}
    b_host.broker(tmp_path / "b", [namesrv], "broker-net", conf)
    broker = f"{b_host.ip}:10911"
    create_topic(broker, "NetT", 2)
    eventually(lambda: routed(namesrv, "NetT") is not None, 15, "route from the other host")
    route = routed(namesrv, "NetT")
    assert route is not None and route.broker_datas[0].broker_addrs == {0: broker}

    lab.isolate(b_host)
    eventually(lambda: routed(namesrv, "NetT") is None, 20, "the silent broker dropped")
    lab.reconnect(b_host)
    eventually(lambda: routed(namesrv, "NetT") is not None, 20, "the broker back in the route")


def test_partition_from_the_name_server_only_leaves_sends_working(lab: NetLab, tmp_path: Path) -> None:
    ns_host, b_host = lab.add_host("ns"), lab.add_host("b")
    ns_host.namesrv(tmp_path / "ns")
    namesrv = f"{ns_host.ip}:9876"
    b_host.broker(tmp_path / "b", [namesrv], "broker-net", {"registerNameServerPeriod": "500"})
    create_topic(f"{b_host.ip}:10911", "NetP", 2)
    eventually(lambda: routed(namesrv, "NetP") is not None, 15, "route")
    producer = Producer(namesrv_addr=namesrv, group="net-pg")
    producer.start()
    try:
        assert producer.send(Message("NetP", b"before")).status.name == "SEND_OK"
        lab.cut(b_host, ns_host)
        # the client cached the route and still reaches the broker directly
        assert producer.send(Message("NetP", b"during")).status.name == "SEND_OK"
        lab.heal(b_host, ns_host)
    finally:
        producer.shutdown()
