"""Issue 9 §3 with three controllers: name servers on three hosts run the failover controller as one
Raft group (pysyncobj, ``--controller-peers``), a SYNC_MASTER group of two on two more hosts, the
load and the Jepsen-style checker of tests/test_netns_faults.py.

kill -9 of the name server leading Raft, and of the broker master right after: the two remaining
controllers elect a new leader, which elects the slave master (it finds the old master silent after
the heartbeat timeout); clients move to the remaining name servers; nothing acknowledged is lost.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ferrymq.core.remoting.codes import RequestCode
from tests.cluster_helpers import call, eventually, routed
from tests.netns import NetLab, NetProcess
from tests.test_netns_faults import TOPIC, Cluster, Load, failover, lab, load, verdict

pytestmark = pytest.mark.process
__all__ = ["lab", "load"]  # the fixtures

GROUP = "jepsenGroup"


class QuorumCluster(Cluster):
    """Name servers with controller nodes on hosts n1..n3; brokers 1 and 2 on hosts b1, b2."""

    def __init__(self, lab: NetLab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        ns_hosts = [lab.add_host(f"n{i}") for i in (1, 2, 3)]
        self.ns_host = ns_hosts[0]
        self.hosts = {1: lab.add_host("b1"), 2: lab.add_host("b2")}
        self.ns_addrs = [f"{h.ip}:9876" for h in ns_hosts]
        peers = ";".join(f"{a}@9877" for a in self.ns_addrs)
        self.ns_procs = {
            a: h.namesrv(tmp / f"ns{i}", controller_peers=peers)
            for i, (a, h) in enumerate(zip(self.ns_addrs, ns_hosts, strict=True))
        }
        self.namesrv = ";".join(self.ns_addrs)  # brokers' controllerAddr and -n, the clients' list
        self.procs: dict[int, NetProcess] = {}
        for i in self.hosts:
            self.start(i)

    def live_ns(self) -> list[str]:
        return [a for a, p in self.ns_procs.items() if p.proc is not None]

    def leader(self) -> str | None:
        """The name server leading the controllers' Raft group, as a live one says."""
        for a in self.live_ns():
            try:
                resp = call(a, RequestCode.CONTROLLER_GET_METADATA_INFO, {})
            except (OSError, TimeoutError):
                continue
            leader = resp.ext_fields.get("controllerLeaderAddress")
            if leader:
                return leader
        return None

    def replica_info(self) -> tuple[str | None, set[int]]:
        for a in self.live_ns():
            try:
                resp = call(a, RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": GROUP})
            except (OSError, TimeoutError):
                continue
            if resp.code == 0:
                sset = set(json.loads(bytes(resp.body))["syncStateSet"])
                return resp.ext_fields.get("masterAddress") or None, sset
        return None, set()

    def route_ids(self) -> dict[int, str]:
        route = next((r for r in (routed(a, TOPIC) for a in self.live_ns()) if r is not None), None)
        if route is None:
            return {}
        return {int(k): v for bd in route.broker_datas for k, v in bd.broker_addrs.items()}


@pytest.fixture
def cluster(lab: NetLab, tmp_path: Path) -> QuorumCluster:
    """Overrides test_netns_faults' cluster, so its ``load`` fixture runs on three controllers."""
    return QuorumCluster(lab, tmp_path)


def test_kill9_of_the_raft_leader_and_the_master(cluster: QuorumCluster, load: Load) -> None:
    quorum = cluster
    m, s = quorum.ready()
    eventually(lambda: quorum.leader() in quorum.ns_procs, 20, "a controller leader")
    old_leader = quorum.leader()
    assert old_leader is not None
    load.run_for(1.0)

    def kill_both() -> None:
        quorum.ns_procs[old_leader].kill()
        quorum.procs[m].kill()

    t0 = failover(quorum, load, m, kill_both, "Raft leader and master kill -9")
    new_leader = quorum.leader()
    assert new_leader is not None and new_leader != old_leader
    # alone in its in-sync set (minInSyncReplicas=1) the new master answers SEND_OK
    t1 = time.monotonic()
    t_ok = t1 - t0 + load.wait_stored_after(t1, "a SEND_OK from the new master", ok=True)
    print(f"controller leader {old_leader} -> {new_leader}; SEND_OK {t_ok:.2f}s after the kill")
    load.run_for(1.0)
    verdict(quorum, load, s, "Raft leader and master kill -9", t0)
