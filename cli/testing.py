"""Run a real ``ferrymq serve`` process from tests (ours, and users' own).

The server binds port 0 and the real ports are read from its ``ferrymq ready`` line, so two test
runs never race for a port. ``kill()`` sends SIGKILL (a crash); ``restart()`` brings the server
back on the same ports and data directory. Logs go to ``<data_dir>/server.log``.

    with FerryServer(tmp_path) as server:
        producer = Producer(namesrv_addr=server.namesrv_addr, group="g")
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

READY = re.compile(
    r"ferrymq ready: name server (?P<ns>\S+):(?P<nsport>\d+), broker (?P<name>\S+) "
    r"(?P<bhost>\S+):(?P<bport>\d+)(?P<extra>(?:, \w+ \S+:\d+)*), data (?P<data>.+)$"
)
#: the optional ", <frontend> host:port" parts of the ready line (admin, kafka), in any order
READY_PART = re.compile(r", (?P<what>\w+) (?P<host>\S+):(?P<port>\d+)")

#: the ready line of ``ferrymq broker`` (no name server part)
BROKER_READY = re.compile(
    r"ferrymq ready: broker (?P<name>\S+) (?P<bhost>\S+):(?P<bport>\d+)(?P<extra>(?:, \w+ \S+:\d+)*), data "
)


def _spawn(cmd: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, env=env)


def _wait_ready(
    proc: subprocess.Popen[bytes], pattern: re.Pattern[str], timeout: float
) -> re.Match[str] | None:
    """The ready line matching ``pattern`` once the process prints it; None on exit or timeout."""
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    buf = b""
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            buf += chunk
            for line in buf.decode(errors="replace").splitlines():
                m = pattern.search(line)
                if m:
                    return m
    finally:
        sel.close()
    return None


def _stop(proc: subprocess.Popen[bytes], sig: int, timeout: float) -> int | None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    return proc.returncode


class ServerError(RuntimeError):
    """The server did not start; the message carries the tail of its log."""


class FerryServer:
    def __init__(
        self,
        data_dir: Path,
        broker_conf: str = "",
        *,
        host: str = "127.0.0.1",
        start_timeout: float = 30.0,
        extra_args: list[str] | None = None,
        grpc: bool = False,
    ) -> None:
        """``grpc``: serve the RocketMQ 5 gRPC listener on a free port (off otherwise: grpcio is
        then never imported, and no test binds its default 8081)."""
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.broker_conf = broker_conf
        self.start_timeout = start_timeout
        self.extra_args = extra_args or []
        self.namesrv_port = 0
        self.broker_port = 0
        self.admin_port = 0
        self.kafka_port = 0  # always passed: no test ever binds Kafka's default 9092
        self.grpc_port = 0 if grpc else -1
        #: every "<frontend> host:port" part of the ready line, e.g. {"admin": 8080}
        self.ports: dict[str, int] = {}
        self.ha_addr: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"
        self.store_dir = self.data_dir / "store"

    @property
    def namesrv_addr(self) -> str:
        return f"{self.host}:{self.namesrv_port}"

    @property
    def broker_addr(self) -> str:
        return f"{self.host}:{self.broker_port}"

    @property
    def admin_url(self) -> str:
        """Base URL of the admin REST API and web console, e.g. http://127.0.0.1:40125"""
        return f"http://{self.host}:{self.admin_port}"

    @property
    def kafka_bootstrap(self) -> str:
        """``bootstrap.servers`` for Kafka clients, e.g. 127.0.0.1:40127"""
        return f"{self.host}:{self.kafka_port}"

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` of the gRPC listener, what a RocketMQ 5 SDK's endpoints name"""
        return f"{self.host}:{self.grpc_port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "ferrymq.cli.main",
            "serve",
            "--host",
            self.host,
            "--data-dir",
            str(self.store_dir),
            "--namesrv-port",
            str(self.namesrv_port),
            "--broker-port",
            str(self.broker_port),
            "--admin-port",
            str(self.admin_port),
            "--kafka-port",
            str(self.kafka_port),
            "--grpc-port",
            str(self.grpc_port),
        ]
        conf_text = self.broker_conf
        if "ha" in self.ports and "haListenPort" not in conf_text:  # a restart: the same HA port
            conf_text += f"\nhaListenPort={self.ports['ha']}\n"
        if self.broker_port and "fastListenPort" not in conf_text:
            # a restart on the same broker port: its VIP port would be listenPort-2, which the first run
            # left free only by chance (its own Kafka port was once that very port); a free one, as then
            conf_text += "\nfastListenPort=0\n"
        if conf_text:
            conf = self.data_dir / "broker.conf"
            conf.write_text(conf_text)
            cmd += ["-c", str(conf)]
        return cmd + self.extra_args

    def start(self) -> FerryServer:
        self.proc = _spawn(self.command(), self.log_path)
        m = _wait_ready(self.proc, READY, self.start_timeout)
        if m is None:
            self.stop(signal.SIGKILL)
            raise ServerError(f"ferrymq serve did not become ready; log tail:\n{self.log_tail()}")
        self.namesrv_port = int(m["nsport"])
        self.broker_port = int(m["bport"])
        self.ports = {p["what"]: int(p["port"]) for p in READY_PART.finditer(m["extra"])}
        self.admin_port = self.ports.get("admin", 0)
        self.kafka_port = self.ports.get("kafka", 0)
        self.grpc_port = self.ports.get("grpc", -1)
        #: ``host:port`` of the broker's HA server (a master's; what a slave's haMasterAddress names)
        self.ha_addr = f"{self.host}:{self.ports['ha']}" if "ha" in self.ports else None
        return self

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Stop the process (SIGTERM: clean shutdown); returns its exit code."""
        proc, self.proc = self.proc, None
        return None if proc is None else _stop(proc, sig, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed or unregistered."""
        self.stop(signal.SIGKILL)

    def restart(self) -> FerryServer:
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self) -> FerryServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


#: the ready line of ``ferrymq namesrv``
NAMESRV_READY = re.compile(r"ferrymq ready: name server (?P<addr>\S+:\d+)\s*$")


def free_port() -> int:
    """A TCP port free now on 127.0.0.1 (for the servers that need a fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Spawned:
    """A ferrymq process started by a test: spawned, waited for its ready line, stopped."""

    proc: subprocess.Popen[bytes] | None
    log_path: Path

    def _launch(self, cmd: list[str], pattern: re.Pattern[str], start_timeout: float) -> re.Match[str]:
        self.proc = _spawn(cmd, self.log_path)
        m = _wait_ready(self.proc, pattern, start_timeout)
        if m is None:
            self.kill()
            raise ServerError(
                f"ferrymq {cmd[3]} did not start: {self.log_path.read_text(errors='replace')[-2000:]}"
            )
        #: the whole ``ferrymq ready`` line, for tests that check what it says
        self.ready_line = m.string
        return m

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        proc, self.proc = self.proc, None
        return None if proc is None else _stop(proc, sig, timeout)

    def kill(self) -> None:
        """SIGKILL: a crash."""
        self.stop(signal.SIGKILL)


class FerryNameServer(_Spawned):
    """A standalone ``ferrymq namesrv`` process on a free port (``addr`` read from its ready line)."""

    def __init__(self, data_dir: Path, *, start_timeout: float = 30.0, controller: bool = False) -> None:
        """``controller``: run a one-node failover controller too (on fixed free ports)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "namesrv.log"
        port = free_port() if controller else 0
        cmd = [
            sys.executable,
            "-m",
            "ferrymq.cli.main",
            "namesrv",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if controller:
            peers = f"127.0.0.1:{port}@{free_port()}"
            cmd += ["--controller-peers", peers, "--controller-dir", str(data_dir / "controller")]
        self.addr = self._launch(cmd, NAMESRV_READY, start_timeout)["addr"]


class FerryBroker(_Spawned):
    """Another broker group: a ``ferrymq broker`` process registering with ``namesrv_addr``.

    Its remoting port is free (read from its ready line); the admin API and Kafka are served on
    free ports only when ``admin`` or ``kafka`` is true.
    """

    def __init__(
        self,
        data_dir: Path,
        namesrv_addr: str,
        name: str,
        *,
        kafka: bool = False,
        admin: bool = False,
        start_timeout: float = 30.0,
        conf: dict[str, str] | None = None,
        grpc: bool = False,
    ) -> None:
        """``conf``: more broker.conf keys (e.g. brokerRole, brokerId for a slave of ``name``)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        conf_path = data_dir / "broker.conf"
        conf_path.write_text(
            f"brokerName={name}\nlistenPort=0\nbrokerIP1=127.0.0.1\nlistenHost=127.0.0.1\n"
            f"storePathRootDir={data_dir / 'store'}\n"
            + "".join(f"{k}={v}\n" for k, v in (conf or {}).items())
        )
        self.log_path = data_dir / "broker.log"
        cmd = [sys.executable, "-m", "ferrymq.cli.main", "broker", "-c", str(conf_path), "-n", namesrv_addr]
        cmd += ["--admin-port", "0" if admin else "-1", "--kafka-port", "0" if kafka else "-1"]
        cmd += ["--grpc-port", "0" if grpc else "-1"]
        m = self._launch(cmd, BROKER_READY, start_timeout)
        self.addr = f"{m['bhost']}:{m['bport']}"
        parts = {p["what"]: f"{p['host']}:{p['port']}" for p in READY_PART.finditer(m["extra"])}
        self.kafka_bootstrap: str | None = parts.get("kafka")
        #: ``host:port`` of each further Kafka listener by its ready-line name, e.g. "kafka_sasl_ssl"
        self.kafka_listeners = {what: addr for what, addr in parts.items() if what.startswith("kafka_")}
        #: ``host:port`` of the gRPC listener when ``grpc`` is true
        self.grpc_endpoint: str | None = parts.get("grpc")
        #: ``host:port`` of the admin REST API when ``admin`` is true
        self.admin_addr: str | None = parts.get("admin")
        #: ``host:port`` of a master's HA server (what a slave's haMasterAddress names)
        self.ha_addr: str | None = parts.get("ha")
