"""Start time and idle footprint: the embedded broker, ``ferrymq serve``, Apache Kafka and RocketMQ.

* the embedded broker (``ferrymq.embedded()``, what the ``ferrymq_broker`` fixture starts), in a
  fresh interpreter: the median of the next starts (what every function-scoped fixture after the
  first costs) and the first start (imports included, what a test session's first test pays);
* ``ferrymq serve`` on free ports: process spawn to its ``ferrymq ready`` line (and the CPU time it
  used to get there, which other load on the machine does not inflate), and its RSS after
  ``IDLE_S`` seconds of idling;
* Apache Kafka (KRaft, one node) and Apache RocketMQ (name server + broker) from the Maven Central
  jars, where Java and Maven are present: spawn to serving (Kafka: its log-dir format included),
  its CPU time and RSS (RocketMQ: both processes).

Figures are printed, never asserted. ``python -m bench.start_bench`` runs it alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from ferrymq.cli.testing import FerryServer

IDLE_S = 2.0

_EMBEDDED = """
import json, time
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
base = rss()
t0 = time.perf_counter()
import ferrymq
with ferrymq.embedded() as broker:
    first = time.perf_counter() - t0
    kafka = broker.kafka_bootstrap
    time.sleep(IDLE)
    added = rss() - base
warm = []
for _ in range(5):
    t = time.perf_counter()
    with ferrymq.embedded():
        warm.append(time.perf_counter() - t)
print(json.dumps({"first": first, "warm": warm, "added": added}))
""".replace("IDLE", str(IDLE_S))


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: a start's cost whatever else the machine
    is running (wall time on a shared machine is not)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: kio registers hypothesis strategies for its types when hypothesis can be imported: the dev
#: venv has it (tests), a user's ``pip install ferrymq`` does not; this prelude hides it
NO_HYPOTHESIS = "import sys; sys.modules['hypothesis'] = None; "


@contextlib.contextmanager
def _bytecode_cached() -> Iterator[None]:
    """Children write and use .pyc files, as an installed package does (PYTHONDONTWRITEBYTECODE
    would make every start compile ferrymq's sources again)."""
    saved = os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["PYTHONDONTWRITEBYTECODE"] = saved


def embedded_start(prelude: str = "") -> dict[str, object]:
    cmd = [sys.executable, "-c", prelude + _EMBEDDED]
    with _bytecode_cached():
        subprocess.run(cmd, capture_output=True, timeout=120)  # writes the .pyc files
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        return {"what": "ferrymq.embedded()", "start_s": out.stderr.strip().splitlines()[-1:]}
    got = json.loads(out.stdout)
    return {
        "what": "ferrymq.embedded() / ferrymq_broker" + (" (no hypothesis)" if prelude else ""),
        "start_s": f"{statistics.median(got['warm']):.3f} (first {got['first']:.3f})",
        "start_cpu_s": "",
        "idle_rss_mib": f"+{got['added']:.0f} in-process",
    }


class _Serve(FerryServer):
    """``ferrymq serve`` with a prelude run before it (to hide hypothesis)."""

    prelude = ""

    def command(self) -> list[str]:
        cmd = super().command()
        if not self.prelude:
            return cmd
        i = cmd.index("-m")
        code = self.prelude + "from ferrymq.cli.main import main; main()"
        return [*cmd[:i], "-c", code, *cmd[i + 2 :]]


def serve_start(prelude: str = "", grpc: bool = False) -> dict[str, object]:
    runs = []
    with _bytecode_cached(), tempfile.TemporaryDirectory() as tmp:
        for i in range(4):  # the first writes the .pyc files; the median of the others
            server = _Serve(Path(tmp) / str(i), grpc=grpc)
            server.prelude = prelude
            t = time.perf_counter()
            with server:
                took = time.perf_counter() - t
                assert server.proc is not None
                cpu = cpu_s(server.proc.pid)
                if i == 3:
                    time.sleep(IDLE_S)
                    rss = rss_mib(server.proc.pid)
            runs.append((took, cpu))
    took, cpu = sorted(runs[1:])[1]
    return {
        "what": "ferrymq serve" + (" (no hypothesis)" if prelude else "") + (" (gRPC on)" if grpc else ""),
        "start_s": f"{took:.3f}",
        "start_cpu_s": f"{cpu:.2f}",
        "idle_rss_mib": f"{rss:.0f}",
    }


def _java_start(
    what: str, start: Callable[[], object], pids: Callable[[object], list[int]]
) -> dict[str, object]:
    t = time.perf_counter()
    try:
        ref = start()
    except Exception as exc:
        return {"what": what, "start_s": f"failed: {exc!s:.60}"}
    took = time.perf_counter() - t
    try:
        cpu = sum(cpu_s(p) for p in pids(ref))
        time.sleep(IDLE_S)
        rss = sum(rss_mib(p) for p in pids(ref))
    finally:
        ref.stop()  # type: ignore[attr-defined]
    return {"what": what, "start_s": f"{took:.3f}", "start_cpu_s": f"{cpu:.2f}", "idle_rss_mib": f"{rss:.0f}"}


def run(*, java: bool = True) -> list[dict[str, object]]:
    rows = [embedded_start(), embedded_start(NO_HYPOTHESIS), serve_start(), serve_start(NO_HYPOTHESIS)]
    rows.append(serve_start(NO_HYPOTHESIS, grpc=True))  # what grpcio adds when the listener is on
    if not java or not (shutil.which("java") and shutil.which("mvn")):
        rows.append({"what": "Apache Kafka / RocketMQ", "start_s": "SKIPPED (no Java or Maven)"})
        return rows
    from bench import kafka_ref, rocketmq_ref

    rows.append(
        _java_start(
            "Apache Kafka (KRaft, format + start)",
            kafka_ref.start_kafka,
            lambda ref: [ref.proc.pid],  # type: ignore[attr-defined]
        )
    )
    rows.append(
        _java_start(
            "Apache RocketMQ (namesrv + broker)",
            rocketmq_ref.start_rocketmq,
            lambda ref: [ref.namesrv.pid, ref.broker.pid],  # type: ignore[attr-defined]
        )
    )
    return rows


if __name__ == "__main__":
    from bench.__main__ import _table

    _table(run(java="--no-java" not in sys.argv))
