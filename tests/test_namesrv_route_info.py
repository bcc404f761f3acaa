"""RouteInfoManager rules, driven by a fake clock so expiry is deterministic."""

from __future__ import annotations

from ferrymq.core.remoting.route import DataVersion, QueueData, RegisterBrokerBody, TopicConfig
from ferrymq.namesrv.route_info import BrokerAddrInfo, RouteInfoManager


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def body(*topics: TopicConfig, counter: int = 1, state_version: int = 0) -> RegisterBrokerBody:
    return RegisterBrokerBody(
        topic_configs={t.topic_name: t for t in topics},
        data_version=DataVersion(timestamp=1, counter=counter, state_version=state_version),
    )


def manager(timeout: float = 120.0) -> tuple[RouteInfoManager, FakeClock]:
    clock = FakeClock()
    return RouteInfoManager(default_timeout_s=timeout, clock=clock), clock


def test_master_registration_builds_all_tables() -> None:
    m, _ = manager()
    res = m.register_broker("C", "h:1", "a", 0, "h:2", body(TopicConfig("T", 4, 4)))
    assert res.master_addr is None and res.ha_server_addr is None
    assert m.topic_queue_table == {"T": {"a": QueueData("a", 4, 4, 6, 0)}}
    assert m.broker_addr_table["a"].broker_addrs == {0: "h:1"}
    assert m.cluster_addr_table == {"C": {"a"}}
    route = m.pick_topic_route("T")
    assert route is not None and route.broker_datas[0].broker_addrs == {0: "h:1"}
    assert m.pick_topic_route("nope") is None


def test_route_is_a_copy() -> None:
    m, _ = manager()
    m.register_broker("C", "h:1", "a", 0, "h:2", body(TopicConfig("T")))
    route = m.pick_topic_route("T")
    assert route is not None
    route.broker_datas[0].broker_addrs[5] = "x"
    route.queue_datas[0].perm = 0
    assert m.broker_addr_table["a"].broker_addrs == {0: "h:1"}
    assert m.topic_queue_table["T"]["a"].perm == 6


def test_slave_gets_master_addresses_but_does_not_change_topics() -> None:
    m, _ = manager()
    m.register_broker("C", "m:1", "a", 0, "m:ha", body(TopicConfig("T", 4, 4)))
    res = m.register_broker("C", "s:1", "a", 1, "s:ha", body(TopicConfig("T", 1, 1), TopicConfig("S")))
    assert (res.master_addr, res.ha_server_addr) == ("m:1", "m:ha")
    assert m.topic_queue_table["T"]["a"].read_queue_nums == 4
    assert "S" not in m.topic_queue_table
    assert m.broker_addr_table["a"].broker_addrs == {0: "m:1", 1: "s:1"}


def test_master_topic_change_updates_queue_data() -> None:
    m, _ = manager()
    m.register_broker("C", "h:1", "a", 0, "h:2", body(TopicConfig("T", 4, 4)))
    m.register_broker("C", "h:1", "a", 0, "h:2", body(TopicConfig("T", 8, 8, 4), counter=2))
    assert m.topic_queue_table["T"]["a"] == QueueData("a", 8, 8, 4, 0)


def test_slave_promoted_to_master_keeps_one_id_per_address() -> None:
    m, _ = manager()
    m.register_broker("C", "s:1", "a", 1, "s:ha", body())
    m.register_broker("C", "s:1", "a", 0, "s:ha", body(TopicConfig("T")))
    assert m.broker_addr_table["a"].broker_addrs == {0: "s:1"}


def test_lower_state_version_cannot_take_over_an_id() -> None:
    m, _ = manager()
    m.register_broker("C", "old:1", "a", 0, "ha", body(TopicConfig("T"), state_version=5))
    m.register_broker("C", "new:1", "a", 0, "ha", body(TopicConfig("T"), state_version=1))
    assert m.broker_addr_table["a"].broker_addrs == {0: "old:1"}


def test_controller_failover_stale_master_cannot_take_id_0_back() -> None:
    # controller mode: a master registers with stateVersion = its epoch (README "Controller mode")
    m, _ = manager()
    m.register_broker("C", "a:1", "g", 0, "a:ha", body(TopicConfig("T"), state_version=1))
    m.register_broker("C", "b:1", "g", 2, "b:ha", body(TopicConfig("T"), state_version=1))
    # b elected at epoch 2: its id 0 registration moves id 0 to it and drops its slave id
    m.register_broker("C", "b:1", "g", 0, "b:ha", body(TopicConfig("T"), state_version=2))
    assert m.broker_addr_table["g"].broker_addrs == {0: "b:1"}
    # a, cut off from the controller, still a master in its own eyes: ignored, and not live
    m.register_broker("C", "a:1", "g", 0, "a:ha", body(TopicConfig("T"), state_version=1, counter=9))
    assert m.broker_addr_table["g"].broker_addrs == {0: "b:1"}
    assert BrokerAddrInfo("C", "a:1") not in m.broker_live_table
    route = m.pick_topic_route("T")
    assert route is not None and route.broker_datas[0].broker_addrs == {0: "b:1"}
    # demoted, a registers as a slave (its own id) and is routed again
    result = m.register_broker("C", "a:1", "g", 1, "a:ha", body(state_version=2))
    assert m.broker_addr_table["g"].broker_addrs == {0: "b:1", 1: "a:1"}
    assert result.master_addr == "b:1" and result.ha_server_addr == "b:ha"


def test_unregister_master_only_keeps_routes_through_the_slave() -> None:
    m, _ = manager()
    m.register_broker("C", "m:1", "a", 0, "ha", body(TopicConfig("T")))
    m.register_broker("C", "s:1", "a", 1, "ha", body())
    assert m.unregister_broker("C", "m:1", "a", 0)
    route = m.pick_topic_route("T")
    assert route is not None and route.broker_datas[0].broker_addrs == {1: "s:1"}


def test_unregister_last_member_removes_group_cluster_and_orphan_topics() -> None:
    m, _ = manager()
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("Shared"), TopicConfig("OnlyA")))
    m.register_broker("C", "b:1", "b", 0, "ha", body(TopicConfig("Shared")))
    m.unregister_broker("C", "a:1", "a", 0)
    assert "OnlyA" not in m.topic_queue_table
    assert set(m.topic_queue_table["Shared"]) == {"b"}
    assert m.cluster_addr_table == {"C": {"b"}}
    m.unregister_broker("C", "b:1", "b", 0)
    assert m.topic_queue_table == {} and m.cluster_addr_table == {} and m.broker_addr_table == {}
    assert not m.unregister_broker("C", "b:1", "b", 0)


def test_scan_expires_silent_brokers_only() -> None:
    m, clock = manager(timeout=10.0)
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("TA")), connection="conn-a")
    m.register_broker("C", "b:1", "b", 0, "ha", body(TopicConfig("TB")))
    clock.now += 6
    m.register_broker("C", "b:1", "b", 0, "ha", body(TopicConfig("TB")))  # b keeps re-registering
    clock.now += 6
    assert [r.broker_name for r in m.scan_not_active()] == ["a"]  # a: 12 s silent, b: 6 s
    assert m.pick_topic_route("TA") is None
    assert m.pick_topic_route("TB") is not None


def test_scan_reports_what_it_removed() -> None:
    m, clock = manager(timeout=10.0)
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("TA")), connection="conn-a")
    assert m.scan_not_active() == []
    clock.now += 10.0
    assert m.scan_not_active() == []  # exactly at the timeout is still alive, as in Java
    clock.now += 0.5
    removed = m.scan_not_active()
    assert [(r.broker_addr, r.broker_name, r.broker_id, r.connection) for r in removed] == [
        ("a:1", "a", 0, "conn-a")
    ]
    assert m.broker_live_table == {}


def test_per_broker_heartbeat_timeout_overrides_default() -> None:
    m, clock = manager(timeout=120.0)
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("T")), heartbeat_timeout_s=1.0)
    clock.now += 2
    assert [r.broker_addr for r in m.scan_not_active()] == ["a:1"]


def test_connection_closed_removes_its_brokers_only() -> None:
    m, _ = manager()
    conn1, conn2 = object(), object()
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("TA")), connection=conn1)
    m.register_broker("C", "b:1", "b", 0, "ha", body(TopicConfig("TB")), connection=conn2)
    removed = m.on_connection_closed(conn1)
    assert [r.broker_name for r in removed] == ["a"]
    assert m.pick_topic_route("TA") is None and m.pick_topic_route("TB") is not None


def test_reregistration_on_a_new_connection_survives_the_old_one_closing() -> None:
    m, _ = manager()
    old, new = object(), object()
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("T")), connection=old)
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("T")), connection=new)
    assert m.on_connection_closed(old) == []
    assert m.pick_topic_route("T") is not None


def test_delete_topic_everywhere_or_per_cluster() -> None:
    m, _ = manager()
    m.register_broker("C1", "a:1", "a", 0, "ha", body(TopicConfig("T")))
    m.register_broker("C2", "b:1", "b", 0, "ha", body(TopicConfig("T")))
    assert m.delete_topic("T", "C1")
    assert set(m.topic_queue_table["T"]) == {"b"}
    assert m.delete_topic("T")
    assert m.all_topics().topic_list == set()
    assert not m.delete_topic("T")


def test_cluster_info_and_topic_list() -> None:
    m, _ = manager()
    m.register_broker("C", "a:1", "a", 0, "ha", body(TopicConfig("T1"), TopicConfig("T2")))
    info = m.cluster_info()
    assert info.cluster_addr_table == {"C": {"a"}}
    assert info.broker_addr_table["a"].broker_addrs == {0: "a:1"}
    assert m.all_topics().topic_list == {"T1", "T2"}


def test_filter_servers_appear_in_route() -> None:
    m, _ = manager()
    b = body(TopicConfig("T"))
    b.filter_server_list = ["f:1"]
    m.register_broker("C", "a:1", "a", 0, "ha", b)
    route = m.pick_topic_route("T")
    assert route is not None and route.filter_server_table == {"a:1": ["f:1"]}
