"""Diverged tails in controller mode, across hosts (network namespaces, tests/netns.py).

An ASYNC master acknowledges writes its slave never gets (here: the pair is partitioned, so the
bytes cannot even sit in the slave's socket buffer). When the slave is elected and the old master
comes back, the old master must throw those writes away (its epoch history says where the two
logs part) before following: afterwards both stores hold the same bytes at every commit-log
offset and the same message at every queue offset. The acknowledged writes the new master never
had are gone: that is what ASYNC replication can lose (README "Controller mode").

Split brain (reference pitfall 5): a master cut off from the controller and its slave keeps
registering id 0 with the name server; the elected slave registers with stateVersion = its epoch,
so the stale master's registrations (a lower stateVersion) are ignored and routing stays with
the new master.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferrymq.cli.testing import NAMESRV_READY
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.message import PROPERTY_UNIQ_KEY
from ferrymq.core.remoting.transport import connect, split_addr
from tests.cluster_helpers import call, create_topic, eventually, max_offset, routed
from tests.netns import Host, NetLab, NetProcess, require_netns
from tests.remoting_helpers import pull_all, send_v2

pytestmark = pytest.mark.process

GROUP = "epochGroup"
TOPIC = "EpochT"
QUEUES = 4
SEGMENT = 256 * 1024
RAFT_PORT = 9880


@pytest.fixture
def lab() -> Iterator[NetLab]:
    require_netns()
    with NetLab() as lab:
        yield lab


def controller(host: Host, data_dir: Path) -> str:
    """A name server running a one-node controller on ``host``; its address."""
    data_dir.mkdir(parents=True, exist_ok=True)
    peers = f"{host.ip}:9876@{RAFT_PORT}"
    args = ["namesrv", "--host", host.ip, "--port", "9876", "--controller-peers", peers]
    host.spawn(
        [*args, "--controller-dir", str(data_dir / "controller")], data_dir / "namesrv.log", NAMESRV_READY
    )
    return f"{host.ip}:9876"


def broker(host: Host, data_dir: Path, namesrv: str, ctl: str, identity: int) -> NetProcess:
    conf = {
        "enableControllerMode": "true",
        "controllerAddr": ctl,
        "brokerId": str(identity),
        "brokerRole": "ASYNC_MASTER",
        "controllerHeartBeatTimeoutMills": "2000",
        "brokerHeartbeatInterval": "200",
        "syncBrokerMetadataPeriod": "200",
        "registerNameServerPeriod": "300",
        "slaveReadEnable": "true",
        "mappedFileSizeCommitLog": str(SEGMENT),
    }
    return host.broker(data_dir, [namesrv], GROUP, conf)


def replica_info(ctl: str) -> tuple[str | None, int, set[int]]:
    """The controller's live master address, epoch and in-sync set of the group."""
    resp = call(ctl, RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": GROUP})
    if resp.code != ResponseCode.SUCCESS:
        return None, 0, set()
    sset = set(json.loads(bytes(resp.body))["syncStateSet"]) if resp.body else set()
    return resp.ext_fields.get("masterAddress"), int(resp.ext_fields.get("masterEpoch") or 0), sset


def route_master(namesrv: str) -> str | None:
    route = routed(namesrv, TOPIC)
    if route is None:
        return None
    return next((bd.broker_addrs.get(0) for bd in route.broker_datas if bd.broker_name == GROUP), None)


def send(addr: str, tag: str, n: int) -> list[str]:
    """n messages straight to ``addr``, round robin over the queues; their unique keys (all acked)."""

    async def go() -> list[str]:
        conn = await connect(*split_addr(addr))
        keys = []
        try:
            for i in range(n):
                key = f"{tag}-{i:04d}"
                cmd = send_v2(TOPIC, key.encode() * 20, i % QUEUES, {PROPERTY_UNIQ_KEY: key})
                resp = await conn.invoke(cmd, timeout=10)
                assert resp.code == ResponseCode.SUCCESS, (key, resp.code, resp.remark)
                keys.append(key)
        finally:
            conn.close()
        return keys

    return asyncio.run(go())


def queues(addr: str) -> list[list[tuple[int, int, str, bytes]]]:
    """Every queue of TOPIC as (queue offset, commit-log offset, unique key, body), pulled."""

    async def go() -> list[list[tuple[int, int, str, bytes]]]:
        conn = await connect(*split_addr(addr))
        try:
            out = []
            for q in range(QUEUES):
                msgs = await pull_all(conn, TOPIC, range(q, q + 1))
                out.append([(m.queue_offset, m.commit_log_offset, m.msg_id, m.body) for m in msgs])
            return out
        finally:
            conn.close()

    return asyncio.run(go())


def offsets(addr: str) -> list[int]:
    return [max_offset(addr, TOPIC, q) for q in range(QUEUES)]


def commit_log(store: Path) -> bytes:
    """The commit log's bytes from offset 0 up to the last non-zero byte (segments in order)."""
    files = sorted((store / "commitlog").iterdir(), key=lambda p: int(p.name))
    assert [int(p.name) for p in files] == [i * SEGMENT for i in range(len(files))]
    return b"".join(p.read_bytes() for p in files).rstrip(b"\0")


def start_group(lab: NetLab, tmp: Path, namesrv: str, ctl: str) -> tuple[Host, Host, NetProcess, NetProcess]:
    """Brokers A (identity 1, elected first) and B (2) on their own hosts, B in the in-sync set."""
    ha, hb = lab.add_host("a"), lab.add_host("b")
    a = broker(ha, tmp / "a", namesrv, ctl, 1)
    a_addr = f"{ha.ip}:10911"
    eventually(lambda: replica_info(ctl)[0] == a_addr, 20, "A elected")
    b = broker(hb, tmp / "b", namesrv, ctl, 2)
    create_topic(a_addr, TOPIC, QUEUES)
    eventually(lambda: replica_info(ctl)[2] == {1, 2}, 20, "B in the in-sync set")
    return ha, hb, a, b


def assert_same_stores(a_addr: str, b_addr: str, lost: list[str]) -> None:
    """Both serve the same message at every queue offset; none of ``lost`` anywhere."""
    qa, qb = queues(a_addr), queues(b_addr)
    for q in range(QUEUES):
        assert [m[:3] for m in qa[q]] == [m[:3] for m in qb[q]], f"queue {q} differs"
        assert qa[q] == qb[q]
        assert [m[0] for m in qa[q]] == list(range(len(qa[q])))  # no hole, no offset twice
    keys = {m[2] for q in qa for m in q}
    assert not keys & set(lost), "an acknowledged write the new master never had is still on A"


def test_rejoining_old_master_cuts_its_async_tail(lab: NetLab, tmp_path: Path) -> None:
    hctl = lab.add_host("ctl")
    ctl = controller(hctl, tmp_path / "ctl")
    ha, hb, a, b = start_group(lab, tmp_path, ctl, ctl)
    a_addr, b_addr = f"{ha.ip}:10911", f"{hb.ip}:10911"

    common = send(a_addr, "common", 20)
    eventually(lambda: offsets(b_addr) == offsets(a_addr), 15, "B has the common writes")

    lab.cut(ha, hb)  # A's HA bytes go nowhere; B stays in the in-sync set (no report changes it)
    lost = send(a_addr, "lost", 15)  # acknowledged by the ASYNC master alone
    a_end = offsets(a_addr)
    a.kill()
    eventually(lambda: replica_info(ctl)[0] == b_addr, 20, "B elected")
    eventually(lambda: route_master(ctl) == b_addr, 15, "route id 0 at B")
    newer = send(b_addr, "newer", 9)  # take the queue offsets A's lost writes had
    assert offsets(b_addr) != a_end

    lab.heal(ha, hb)
    a = broker(ha, tmp_path / "a", ctl, ctl, 1)  # the old master, its store and epochs from disk
    eventually(lambda: offsets(a_addr) == offsets(b_addr), 20, "A follows B")
    assert "cutting this store's diverged tail" in (tmp_path / "a" / "broker.log").read_text()
    assert_same_stores(a_addr, b_addr, lost)
    keys = {m[2] for q in queues(a_addr) for m in q}
    assert set(common) | set(newer) <= keys

    a.stop()
    b.stop()
    assert commit_log(tmp_path / "a" / "store") == commit_log(tmp_path / "b" / "store")
    a_epochs = (tmp_path / "a" / "store" / "epochFileCheckpoint").read_text().split("\n")[2:]
    b_epochs = (tmp_path / "b" / "store" / "epochFileCheckpoint").read_text().split("\n")[2:]
    assert a_epochs == b_epochs and [e.split("-")[0] for e in a_epochs if e] == ["1", "2"]


def test_split_brain_master_neither_regains_routing_nor_keeps_its_writes(lab: NetLab, tmp_path: Path) -> None:
    hctl, hns = lab.add_host("ctl"), lab.add_host("ns")
    ctl = controller(hctl, tmp_path / "ctl")
    hns.namesrv(tmp_path / "ns")
    namesrv = f"{hns.ip}:9876"
    ha, hb, _, _ = start_group(lab, tmp_path, namesrv, ctl)
    a_addr, b_addr = f"{ha.ip}:10911", f"{hb.ip}:10911"
    send(a_addr, "common", 12)
    eventually(lambda: offsets(b_addr) == offsets(a_addr), 15, "B has the common writes")
    eventually(lambda: route_master(namesrv) == a_addr, 15, "route id 0 at A")

    # A loses the controller and B, not the name server: it stays master in its own eyes
    lab.cut(ha, hctl)
    lab.cut(ha, hb)
    lost = send(a_addr, "split", 10)
    eventually(lambda: replica_info(ctl)[0] == b_addr, 20, "B elected")
    eventually(lambda: route_master(namesrv) == b_addr, 15, "route id 0 at B")
    # A keeps registering id 0 every 300 ms: the name server must keep B (a higher stateVersion)
    for _ in range(30):
        assert route_master(namesrv) == b_addr, "the stale master took routing back"
        asyncio.run(asyncio.sleep(0.1))
    assert "newer state version); ignored" in (tmp_path / "ns" / "namesrv.log").read_text()
    send(b_addr, "newer", 6)

    lab.heal(ha, hctl)
    lab.heal(ha, hb)  # A learns it is a slave at epoch 2, cuts its split-brain writes, follows B
    eventually(lambda: offsets(a_addr) == offsets(b_addr), 20, "A follows B")
    assert_same_stores(a_addr, b_addr, lost)
    assert route_master(namesrv) == b_addr
