"""Issue 9 §3: a broker group in controller mode across hosts, under faults, judged by the
Jepsen-style checker (tests/jepsen.py).

Each process has its own network namespace and address on the test's veth bridge (tests/netns.py):
a name server running the failover controller, and two brokers of one group (SYNC_MASTER: a send
is SEND_OK only once the in-sync slave has it). From the root namespace a producer sends without
pause and a pull consumer reads; every fault then ends with the same verdict: every SEND_OK message
is in the final log at the offset it was acknowledged at, no message twice, no offset holding two
messages, offsets in order, and the consumer has read every acknowledged message (it resumed).
Failover time (fault to the first stored send after it) is printed, bounded only generously.

Faults: kill -9 of the master; SIGSTOP of the master past the controller's heartbeat timeout, then
SIGCONT; partitions of the master from its slave (no SEND_OK until the master drops it
from the in-sync set), from the name server (controller), from both
(blackhole routes: the client still reaches the old master); the old master's restart.

Root and iproute2 are needed: elsewhere these tests skip loudly, and under CI=true that skip fails.
``NETNS_SOAK_SECONDS`` lengthens the load phases (``make soak-netns``).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ferrymq.client import LitePullConsumer, Message, MQError, Producer, SendStatus
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.transport import connect, split_addr
from tests.cluster_helpers import call, eventually, max_offset, routed
from tests.jepsen import Ack, Read, check, missing
from tests.netns import Host, NetLab, NetProcess, require_netns
from tests.remoting_helpers import pull_all

pytestmark = pytest.mark.process

GROUP = "jepsenGroup"
TOPIC = "JepsenTopic"
QUEUES = 2
HB_TIMEOUT_MS = 2000
HA_HOUSEKEEPING_MS = 2000
HA_HEARTBEAT_MS = 300
#: seconds of load in each phase (before a fault, during it, after it)
PHASE = float(os.environ.get("NETNS_SOAK_SECONDS", "0")) or 1.0
#: generous: a failover slower than this is broken, not slow
FAILOVER_BOUND = 30.0
STORED = (SendStatus.SEND_OK, SendStatus.SLAVE_NOT_AVAILABLE, SendStatus.FLUSH_SLAVE_TIMEOUT)


class Diverged(AssertionError):
    """A rejoined old master's untruncated tail (epoch truncation prevents it), or a consumer's read
    of an unreplicated one (the high watermark prevents it)."""


# ---- the cluster ---------------------------------------------------------------------------------


class Cluster:
    """A name server with the controller on host ``ns`` and brokers 1 and 2 on hosts ``b1``, ``b2``."""

    def __init__(self, lab: NetLab, tmp: Path) -> None:
        self.lab, self.tmp = lab, tmp
        self.ns_host = lab.add_host("ns")
        self.hosts = {1: lab.add_host("b1"), 2: lab.add_host("b2")}
        self.namesrv = f"{self.ns_host.ip}:9876"
        self.ns_host.namesrv(tmp / "ns", controller_peers=f"{self.namesrv}@9877")
        self.procs: dict[int, NetProcess] = {}
        for i in self.hosts:
            self.start(i)

    def addr(self, i: int) -> str:
        return f"{self.hosts[i].ip}:10911"

    def start(self, i: int) -> NetProcess:
        conf = {
            "enableControllerMode": "true",
            "controllerAddr": self.namesrv,
            "brokerId": str(i),
            "brokerRole": "SYNC_MASTER",
            "controllerHeartBeatTimeoutMills": str(HB_TIMEOUT_MS),
            "brokerHeartbeatInterval": "200",
            "syncBrokerMetadataPeriod": "200",
            "registerNameServerPeriod": "500",
            "haHousekeepingInterval": str(HA_HOUSEKEEPING_MS),
            "haSendHeartbeatInterval": str(HA_HEARTBEAT_MS),  # below housekeeping: an idle link stays up
            "slaveTimeout": "1000",
            "slaveReadEnable": "true",  # the checker reads each broker's log
            "defaultTopicQueueNums": str(QUEUES),
            "mappedFileSizeCommitLog": str(1024 * 1024),
        }
        self.procs[i] = self.hosts[i].broker(self.tmp / f"b{i}", [self.namesrv], GROUP, conf)
        return self.procs[i]

    def replica_info(self) -> tuple[str | None, set[int]]:
        """The controller's master address and in-sync set (None, {} when it cannot answer)."""
        try:
            resp = call(self.namesrv, RequestCode.CONTROLLER_GET_REPLICA_INFO, {"brokerName": GROUP})
        except (OSError, TimeoutError):
            return None, set()
        if resp.code != 0:
            return None, set()
        return resp.ext_fields.get("masterAddress") or None, set(json.loads(bytes(resp.body))["syncStateSet"])

    def master(self) -> int | None:
        addr = self.replica_info()[0]
        return next((i for i in self.hosts if self.addr(i) == addr), None)

    def route_ids(self) -> dict[int, str]:
        route = routed(self.namesrv, TOPIC)
        if route is None:
            return {}
        return {int(k): v for bd in route.broker_datas for k, v in bd.broker_addrs.items()}

    def ready(self) -> tuple[int, int]:
        """Wait for a master with its slave in sync and the topic routed: (master, slave)."""
        eventually(lambda: self.master() is not None, 20, "a master elected")
        m = self.master()
        assert m is not None
        s = 3 - m
        eventually(lambda: self.replica_info()[1] == {1, 2}, 20, "the slave in the in-sync set")
        return m, s

    def read_all(self, i: int) -> list[Read]:
        """Every message of the topic on broker ``i``, per queue in offset order."""

        async def go() -> list[Read]:
            conn = await connect(*split_addr(self.addr(i)))
            try:
                msgs = await pull_all(conn, TOPIC, range(QUEUES))
            finally:
                conn.close()
            return [Read(m.queue_id, m.queue_offset, m.body, f"broker {i}") for m in msgs]

        return asyncio.run(go())

    def caught_up(self, slave: int, master: int) -> bool:
        """Every queue of the topic as long on ``slave`` as on ``master``."""
        return all(
            max_offset(self.addr(slave), TOPIC, q) == max_offset(self.addr(master), TOPIC, q)
            for q in range(QUEUES)
        )

    def host(self, i: int) -> Host:
        return self.hosts[i]


# ---- the load and the consumer -------------------------------------------------------------------


@dataclass
class Outcome:
    started: float
    ended: float
    value: bytes
    status: SendStatus | None  # None: an error (nothing known of the message)
    queue: int = -1
    offset: int = -1


@dataclass
class Load:
    """One producer sending without pause from the root namespace (no client retries, so every
    attempt is its own message and a duplicate is the broker's), and one pull consumer."""

    namesrv: str
    outcomes: list[Outcome] = field(default_factory=list)
    reads: list[Read] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _running: threading.Event = field(default_factory=threading.Event)
    _idle: threading.Event = field(default_factory=threading.Event)
    _stop_consumer: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        self.producer = Producer(
            self.namesrv, group="jepsenProducer", send_timeout=2.0, retry_times=0, poll_namesrv_interval=0.3
        )
        self.producer.start()
        self.consumer = LitePullConsumer(
            self.namesrv,
            group="jepsenConsumer",
            consume_from="FIRST_OFFSET",
            auto_commit_interval=0.5,
            poll_namesrv_interval=0.3,
            request_timeout=2.0,
            pull_delay_on_error=0.2,
            broker_suspend_max=1.0,
            pull_timeout=3.0,
            rebalance_interval=1.0,
        )
        self.consumer.subscribe(TOPIC)
        self.consumer.start()
        self._threads = [
            threading.Thread(target=self._produce, name="jepsen-producer", daemon=True),
            threading.Thread(target=self._consume, name="jepsen-consumer", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _produce(self) -> None:
        n = 0
        self._running.set()
        while not self._stop.is_set():
            if not self._running.is_set():
                self._idle.set()
                self._running.wait(0.1)
                continue
            self._idle.clear()
            n += 1
            value = f"m{n:06d}".encode()
            t0 = time.monotonic()
            try:
                r = self.producer.send(Message(TOPIC, value))
            except MQError:
                self.outcomes.append(Outcome(t0, time.monotonic(), value, None))
                self._stop.wait(0.05)  # the route is being refreshed: no busy loop meanwhile
                continue
            self.outcomes.append(
                Outcome(t0, time.monotonic(), value, r.status, r.queue.queue_id, r.queue_offset)
            )

    def _consume(self) -> None:
        while not self._stop_consumer.is_set():
            try:
                batch = self.consumer.poll(0.3)
            except MQError:
                continue
            self.reads += [Read(m.queue_id, m.queue_offset, m.body, "consumer") for m in batch]

    def pause(self) -> None:
        """Stop sending once the send in flight has its answer."""
        self._idle.clear()
        self._running.clear()
        assert self._idle.wait(10), "the producer did not pause"

    def resume(self) -> None:
        self._running.set()

    def stop_producing(self) -> None:
        self._stop.set()
        self._threads[0].join(10)

    def close(self) -> None:
        self._stop.set()
        self._stop_consumer.set()
        for t in self._threads:
            t.join(10)
        for client in (self.producer, self.consumer):
            try:
                client.shutdown()
            except Exception as exc:  # teardown after a failed test: report, go on
                print(f"shutting down a client: {exc}")

    @property
    def acks(self) -> list[Ack]:
        return [Ack(o.value, o.queue, o.offset) for o in self.outcomes if o.status == SendStatus.SEND_OK]

    def acked_after(self, t: float) -> int:
        return sum(1 for o in self.outcomes if o.started > t and o.status == SendStatus.SEND_OK)

    def wait_stored_after(self, t: float, what: str, *, ok: bool = False) -> float:
        """Seconds from ``t`` to the end of the first send started after it that was stored
        (``ok``: SEND_OK, i.e. replicated too)."""
        wanted = (SendStatus.SEND_OK,) if ok else STORED

        def first() -> Outcome | None:
            return next((o for o in list(self.outcomes) if o.started > t and o.status in wanted), None)

        eventually(lambda: first() is not None, FAILOVER_BOUND, what)
        o = first()
        assert o is not None
        return o.ended - t

    def run_for(self, seconds: float) -> None:
        """Let the load go on (the phase of a fault scenario; nothing to await but time)."""
        self._stop.wait(seconds)


@pytest.fixture
def lab() -> Iterator[NetLab]:
    require_netns()
    with NetLab() as lab:
        yield lab


@pytest.fixture
def cluster(lab: NetLab, tmp_path: Path) -> Cluster:
    return Cluster(lab, tmp_path)


@pytest.fixture
def load(cluster: Cluster) -> Iterator[Load]:
    cluster.ready()
    load = Load(cluster.namesrv)
    try:
        load.start()
        eventually(lambda: load.acked_after(0) >= 20, 20, "the load acknowledged")
        yield load
    finally:
        load.close()


def rejoined(cluster: Cluster, load: Load, old: int, new: int, name: str) -> None:
    """The old master ``old`` must follow ``new`` as its slave: in the route under its own id, in
    the in-sync set again, and sends are SEND_OK again (replicated to it)."""
    t0 = time.monotonic()
    eventually(lambda: cluster.route_ids().get(old) == cluster.addr(old), 20, f"broker {old} routed as slave")
    eventually(lambda: cluster.replica_info()[1] == {1, 2}, 20, f"broker {old} in sync again")
    t_ok = load.wait_stored_after(time.monotonic(), "a SEND_OK after the rejoin", ok=True)
    assert cluster.master() == new
    print(f"{name}: broker {old} rejoined as slave; SEND_OK again {time.monotonic() - t0 + t_ok:.2f}s")


def verdict(
    cluster: Cluster, load: Load, master: int, name: str, t_fault: float, slave: int | None = None
) -> None:
    """Stop the load; the consumer must have read every acknowledged message; the checker over the
    final log of ``master`` and what the consumer read; ``slave``, once caught up, must hold the
    same log message for message."""
    load.stop_producing()
    acks = load.acks
    eventually(
        lambda: not missing(acks, list(load.reads)), 30, "the consumer read every acknowledged message"
    )
    final = cluster.read_all(master)
    report = check(acks, final, list(load.reads))
    stored = sum(1 for o in load.outcomes if o.status in STORED)
    print(
        f"{name}: {len(load.outcomes)} sends, {stored} stored, {len(acks)} acknowledged "
        f"({load.acked_after(t_fault)} after the fault), {len(load.reads)} reads; {report}"
    )
    # the guarantee itself: nothing acknowledged lost, nothing twice, offsets in order
    assert not (report.lost or report.duplicates or report.out_of_order), str(report)
    problems = []
    if slave is not None:
        eventually(lambda: cluster.caught_up(slave, master), 20, f"broker {slave} caught up")
        theirs = {(r.queue, r.offset): r.value for r in cluster.read_all(slave)}
        mine = {(r.queue, r.offset): r.value for r in final}
        differ = sorted(k for k, v in mine.items() if theirs.get(k) != v)
        if differ:
            problems.append(
                f"broker {slave} (rejoined) holds other messages than the master at {len(differ)} "
                f"(queue, offset)s, first {differ[:3]}: its diverged tail was not truncated"
            )
    if report.conflicts or report.vanished:
        problems.append(
            f"the consumer read {len(report.vanished)} messages the final log does not hold "
            f"({len(report.conflicts)} offsets now hold another message): reads past what the "
            f"slave confirmed"
        )
    print(f"{name}: " + ("; ".join(problems) or "consistent"))
    if problems:
        raise Diverged("; ".join(problems))


def failover(cluster: Cluster, load: Load, old: int, fault: Callable[[], None], name: str) -> float:
    """Apply ``fault`` to master ``old``; wait for the other broker to be elected and a send to
    be stored on it; print and return the failover time."""
    new = 3 - old
    t0 = time.monotonic()
    fault()
    eventually(lambda: cluster.master() == new, FAILOVER_BOUND, f"broker {new} elected")
    t_elected = time.monotonic() - t0
    eventually(lambda: cluster.route_ids().get(0) == cluster.addr(new), FAILOVER_BOUND, "route id 0 moved")
    t_send = load.wait_stored_after(t0 + t_elected, "a send stored on the new master")
    print(f"{name}: failover elected {t_elected:.2f}s, first stored send {t_elected + t_send:.2f}s")
    assert t_elected + t_send < FAILOVER_BOUND
    return t0


# ---- the faults ----------------------------------------------------------------------------------


def test_kill9_of_the_master_under_load(cluster: Cluster, load: Load) -> None:
    m, s = cluster.ready()
    load.run_for(PHASE)
    t0 = failover(cluster, load, m, cluster.procs[m].kill, "kill -9")
    load.run_for(PHASE)
    verdict(cluster, load, s, "kill -9", t0)


def test_sigstop_of_the_master_past_the_heartbeat_timeout(cluster: Cluster, load: Load) -> None:
    """The stopped master wakes up believing it is master: it must not acknowledge a write the
    group then loses (split brain, pitfall #5), and it must end up following the new master."""
    m, s = cluster.ready()
    load.run_for(PHASE)
    t0 = failover(cluster, load, m, lambda: cluster.procs[m].send_signal(signal.SIGSTOP), "SIGSTOP")
    cluster.procs[m].send_signal(signal.SIGCONT)
    load.run_for(PHASE)
    rejoined(cluster, load, m, s, "SIGSTOP")
    verdict(cluster, load, s, "SIGSTOP", t0, slave=m)


def test_partition_of_the_master_from_its_slave(cluster: Cluster, load: Load) -> None:
    """The master still reaches the controller: it stays master. No send is SEND_OK while the slave
    is in the in-sync set and cannot have it; after haHousekeepingInterval of silence the master
    drops it from the set (so it can no longer be elected) and, alone in the set, answers SEND_OK
    as RocketMQ 5 does. After the heal the slave catches up, rejoins the set, and holds the same log."""
    m, s = cluster.ready()
    load.run_for(PHASE)
    cluster.lab.cut(cluster.host(m), cluster.host(s))
    t0 = time.monotonic()  # once both routes are in (sends during the two `ip` calls may be acked)
    load.run_for(PHASE + HB_TIMEOUT_MS / 1000)
    assert cluster.master() == m
    eventually(lambda: cluster.replica_info()[1] == {m}, 20, "the cut-off slave out of the in-sync set")
    first_ok = min(
        (o.ended for o in list(load.outcomes) if o.started > t0 and o.status == SendStatus.SEND_OK),
        default=None,
    )
    cluster.lab.heal(cluster.host(m), cluster.host(s))
    eventually(lambda: cluster.replica_info()[1] == {1, 2}, 20, "the slave back in the in-sync set")
    t_back = time.monotonic()
    t_ok = load.wait_stored_after(t_back, "SEND_OK with the slave back in the set", ok=True)
    silent = first_ok - t0 if first_ok is not None else None
    print(f"master/slave partition: first SEND_OK while cut after {silent}s; {t_ok:.2f}s after the rejoin")
    # the slave was dropped only after a silence of haHousekeepingInterval (less a heartbeat period)
    assert silent is None or silent >= (HA_HOUSEKEEPING_MS - HA_HEARTBEAT_MS) / 1000, silent
    verdict(cluster, load, m, "master/slave partition", t0, slave=s)


def test_partition_of_the_master_from_the_controller(cluster: Cluster, load: Load) -> None:
    m, s = cluster.ready()
    load.run_for(PHASE)
    t0 = failover(
        cluster, load, m, lambda: cluster.lab.cut(cluster.host(m), cluster.ns_host), "controller partition"
    )
    load.run_for(PHASE)
    cluster.lab.heal(cluster.host(m), cluster.ns_host)
    rejoined(cluster, load, m, s, "controller partition")
    verdict(cluster, load, s, "controller partition", t0, slave=m)


def test_partition_of_the_master_from_slave_and_controller(cluster: Cluster, load: Load) -> None:
    """The client still reaches the old master, which keeps taking writes it cannot replicate."""
    m, s = cluster.ready()
    load.run_for(PHASE)

    def cut_both() -> None:
        cluster.lab.cut(cluster.host(m), cluster.host(s))
        cluster.lab.cut(cluster.host(m), cluster.ns_host)

    t0 = failover(cluster, load, m, cut_both, "full partition")
    load.run_for(PHASE)
    cluster.lab.heal(cluster.host(m), cluster.host(s))
    cluster.lab.heal(cluster.host(m), cluster.ns_host)
    rejoined(cluster, load, m, s, "full partition")
    verdict(cluster, load, s, "full partition", t0, slave=m)


def test_restart_of_the_killed_master(cluster: Cluster, load: Load) -> None:
    """Killed with nothing unreplicated (the load paused, the slave caught up), so the restarted
    old master is only behind the new one: it rejoins as its slave and SEND_OK returns."""
    m, s = cluster.ready()
    load.run_for(PHASE)
    load.pause()
    eventually(lambda: cluster.caught_up(s, m), 20, "the slave caught up")

    def kill_and_resume() -> None:
        cluster.procs[m].kill()
        load.resume()

    t0 = failover(cluster, load, m, kill_and_resume, "restart")
    load.run_for(PHASE)
    cluster.start(m)
    rejoined(cluster, load, m, s, "restart")
    verdict(cluster, load, s, "restart", t0, slave=m)
