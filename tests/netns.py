"""Hosts for multi-host tests: Linux network namespaces on a veth bridge the test makes itself.

Each host is a network namespace with one interface (``eth0``) on a bridge in the root namespace;
the bridge holds the ``.1`` address of the lab's /24, so the test process itself reaches every
host. Processes run in a host with ``ip netns exec`` (which execs: the PID is the process's own,
so SIGKILL and SIGSTOP reach it directly).

Faults, without tc netem (this kernel has no sch_netem):

* ``isolate(host)`` sets the host's bridge port down: everything it sends or is sent is dropped
  silently, as when a cable is pulled;
* ``cut(a, b)`` adds blackhole routes both ways between two hosts (a partition of that pair
  only; packets of established connections are dropped, new connections fail).

Needs root and iproute2; ``require_netns()`` skips loudly otherwise. ``NetLab.close()`` kills
what it started and deletes every namespace and link it made.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import random
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ferrymq.cli.testing import BROKER_READY, NAMESRV_READY, ServerError, _spawn, _stop, _wait_ready


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=20)


def netns_problem() -> str | None:
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "multi-host tests need root (they create network namespaces and veth links)"
    if shutil.which("ip") is None:
        return "multi-host tests need iproute2's `ip`"
    name = f"fmprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot create a network namespace: {exc}"
    with contextlib.suppress(subprocess.CalledProcessError):
        _ip("netns", "del", name)
    return None


def require_netns() -> None:
    problem = netns_problem()
    if problem is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the multi-host tests: {problem}")
        pytest.skip(f"SKIPPED LOUDLY: {problem}")


@dataclass
class NetProcess:
    """A ferrymq process inside a host."""

    host: Host
    proc: subprocess.Popen[bytes] | None
    log_path: Path
    ready: re.Match[str]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def send_signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        return _stop(proc, sig, timeout)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class Host:
    lab: NetLab
    name: str
    ns: str
    ip: str
    port_dev: str  # the bridge port (root-namespace end of the veth)
    processes: list[NetProcess] = field(default_factory=list)

    def spawn(
        self, args: list[str], log_path: Path, ready: re.Pattern[str], timeout: float = 30.0
    ) -> NetProcess:
        """Start ``python -m ferrymq.cli.main *args`` in this host and wait for its ready line."""
        cmd = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "ferrymq.cli.main", *args]
        proc = _spawn(cmd, log_path)
        m = _wait_ready(proc, ready, timeout)
        if m is None:
            _stop(proc, signal.SIGKILL, 5)
            raise ServerError(f"{args[0]} in {self.name} did not start: {log_path.read_text()[-2000:]}")
        p = NetProcess(self, proc, log_path, m)
        self.processes.append(p)
        return p

    def namesrv(self, data_dir: Path, port: int = 9876, controller_peers: str | None = None) -> NetProcess:
        """A name server; with ``controller_peers`` ("ip:port@raftPort;...", this host's among
        them) it runs a failover controller node too."""
        data_dir.mkdir(parents=True, exist_ok=True)
        args = ["namesrv", "--host", self.ip, "--port", str(port)]
        if controller_peers:
            args += ["--controller-peers", controller_peers, "--controller-dir", str(data_dir / "controller")]
        return self.spawn(args, data_dir / "namesrv.log", NAMESRV_READY)

    def broker(
        self,
        data_dir: Path,
        namesrv_addrs: list[str],
        name: str,
        conf: dict[str, str] | None = None,
        port: int = 10911,
    ) -> NetProcess:
        """A ``ferrymq broker`` on this host's address (fixed ports: each host has its own)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        conf_path = data_dir / "broker.conf"
        lines = {
            "brokerName": name,
            "listenPort": str(port),
            "brokerIP1": self.ip,
            "listenHost": self.ip,
            "storePathRootDir": str(data_dir / "store"),
            **(conf or {}),
        }
        conf_path.write_text("".join(f"{k}={v}\n" for k, v in lines.items()))
        args = ["broker", "-c", str(conf_path), "-n", ";".join(namesrv_addrs)]
        args += ["--admin-port", "-1", "--kafka-port", "-1", "--grpc-port", "-1"]
        return self.spawn(args, data_dir / "broker.log", BROKER_READY)


class NetLab:
    """A bridge and the hosts on it; use as a context manager (or call ``close``)."""

    def __init__(self) -> None:
        self.tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
        self.bridge = f"fmbr{self.tag}"
        self.subnet = self._free_subnet()
        self.hosts: dict[str, Host] = {}
        self._cuts: set[tuple[str, str]] = set()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet[1]}/{self.subnet.prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    @staticmethod
    def _free_subnet() -> ipaddress.IPv4Network:
        used = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, timeout=10).stdout
        for _ in range(200):
            net = ipaddress.IPv4Network(f"10.{random.randrange(200, 250)}.{random.randrange(256)}.0/24")
            if str(net.network_address)[:-2] not in used:
                return net
        raise RuntimeError("no free 10.x.y.0/24 subnet for the lab")

    def add_host(self, name: str) -> Host:
        n = len(self.hosts) + 2
        ns = f"fm{self.tag}{name}"
        port = f"fm{self.tag}p{n}"
        ip = str(self.subnet[n])
        _ip("netns", "add", ns)
        _ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", port, "master", self.bridge)
        _ip("link", "set", port, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{ip}/{self.subnet.prefixlen}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        host = Host(self, name, ns, ip, port)
        self.hosts[name] = host
        return host

    # ---- faults ------------------------------------------------------------------------------

    def isolate(self, host: Host) -> None:
        """Pull the host's cable: nothing in or out (processes keep running)."""
        _ip("link", "set", host.port_dev, "down")

    def reconnect(self, host: Host) -> None:
        _ip("link", "set", host.port_dev, "up")

    def cut(self, a: Host, b: Host) -> None:
        """Partition ``a`` from ``b`` only (both directions)."""
        _ip("-n", a.ns, "route", "add", "blackhole", f"{b.ip}/32")
        _ip("-n", b.ns, "route", "add", "blackhole", f"{a.ip}/32")
        self._cuts.add((a.name, b.name))

    def heal(self, a: Host, b: Host) -> None:
        _ip("-n", a.ns, "route", "del", "blackhole", f"{b.ip}/32")
        _ip("-n", b.ns, "route", "del", "blackhole", f"{a.ip}/32")
        self._cuts.discard((a.name, b.name))

    # ---- teardown ----------------------------------------------------------------------------

    def close(self) -> None:
        for host in self.hosts.values():
            for p in host.processes:
                with contextlib.suppress(Exception):
                    p.kill()
        for host in self.hosts.values():
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                _ip("link", "del", host.port_dev)
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                _ip("netns", "del", host.ns)
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _ip("link", "del", self.bridge)
        self.hosts.clear()

    def __enter__(self) -> NetLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
