"""Start time and idle footprint: the embedded broker, ``ferrymq serve``, Apache Kafka and RocketMQ.

* the embedded broker (``ferrymq.embedded()``, what the ``ferrymq_broker`` fixture starts), in a
  fresh interpreter: the first start (imports included, as a test session's first test pays) and
  the next ones (what every later function-scoped fixture costs);
* ``ferrymq serve`` on free ports: process spawn to its ``ferrymq ready`` line, and its RSS after
  ``IDLE_S`` seconds of idling;
* Apache Kafka (KRaft, one node) and Apache RocketMQ (name server + broker) from the Maven Central
  jars, where Java and Maven are present: spawn to serving, and RSS (RocketMQ: both processes).

Figures are printed, never asserted. ``python -m bench.start_bench`` runs it alone.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ferrymq.cli.testing import FerryServer

IDLE_S = 2.0

_EMBEDDED = """
import json, time
t0 = time.perf_counter()
import ferrymq
with ferrymq.embedded() as broker:
    first = time.perf_counter() - t0
    kafka = broker.kafka_bootstrap
warm = []
for _ in range(5):
    t = time.perf_counter()
    with ferrymq.embedded():
        warm.append(time.perf_counter() - t)
print(json.dumps({"first": first, "warm": warm}))
"""


def rss_mib(pid: int) -> float:
    """Resident set size of a process, MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def embedded_start() -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", _EMBEDDED], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        return {"what": "ferrymq.embedded()", "error": out.stderr.strip().splitlines()[-1:]}
    got = json.loads(out.stdout)
    return {
        "what": "ferrymq.embedded() / ferrymq_broker",
        "start_s": f"{statistics.median(got['warm']):.3f}",
        "first_start_s": f"{got['first']:.3f}",
        "idle_rss_mib": "",
    }


def serve_start() -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        server = FerryServer(Path(tmp))
        t = time.perf_counter()
        with server:
            took = time.perf_counter() - t
            time.sleep(IDLE_S)
            assert server.proc is not None
            rss = rss_mib(server.proc.pid)
    return {
        "what": "ferrymq serve",
        "start_s": f"{took:.3f}",
        "first_start_s": "",
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
        time.sleep(IDLE_S)
        rss = sum(rss_mib(p) for p in pids(ref))
    finally:
        ref.stop()  # type: ignore[attr-defined]
    return {"what": what, "start_s": f"{took:.3f}", "first_start_s": "", "idle_rss_mib": f"{rss:.0f}"}


def run(*, java: bool = True) -> list[dict[str, object]]:
    rows = [embedded_start(), serve_start()]
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
