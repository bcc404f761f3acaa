"""Run Apache Kafka's Java client (compat-tests/kafka-java) from Python.

compat-tests/kafka-java is one small command-line program, ``io.ferrymq.kafkacompat.KafkaCompat``,
built once per client line by a Maven profile (``kafka-3.9``: kafka-clients 3.9.x, ``kafka-4``:
the newest 4.x) into ``target/<line>/``. It prints one ``RESULT <json>`` line per observation::

    run = run_kafka_java("kafka-4", "produce", bootstrap, topic, "12", "3")
    sends = of_type(run.results, "send")

``make java`` builds both lines; ``build(line)`` does the same when a build is missing or stale.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MODULE_DIR = REPO_ROOT / "compat-tests" / "kafka-java"
MAIN_CLASS = "io.ferrymq.kafkacompat.KafkaCompat"
RESULT_PREFIX = "RESULT "
#: the client lines (Maven profiles) and the kafka-clients versions they pin (see the pom)
LINES = ("kafka-3.9", "kafka-4")

# Small client JVMs: the machine has 2 cores and is shared. The producer's TransactionManager logs
# the producer id it got from InitProducerId at INFO: that line is how a test sees idempotence.
JVM_ARGS = [
    "-Xms32m",
    "-Xmx192m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
    "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.producer.internals.TransactionManager=info",
]


class KafkaJavaError(RuntimeError):
    """The program exited non-zero or timed out; the message carries the tail of its stderr."""


@dataclass
class Run:
    results: list[dict[str, Any]]
    stderr: str


def find_java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def skip_reason() -> str | None:
    """None when java and mvn are both present, else a loud reason for pytest.skip."""
    missing = [n for n, p in (("java", find_java()), ("mvn", shutil.which("mvn"))) if p is None]
    if not missing:
        return None
    return (
        f"!!! {' and '.join(missing)} not found: the Kafka Java client compat tests are SKIPPED. "
        "Install a JDK (17+) and Maven 3 to run them !!!"
    )


def mvn_args(line: str) -> list[str]:
    """What ``make java`` runs for one client line (from the repository root)."""
    return [
        "-q",
        "-B",
        "-f",
        "compat-tests/kafka-java/pom.xml",
        "-P",
        line,
        "-DskipTests",
        "package",
        "dependency:build-classpath",
    ]


def _target(line: str) -> Path:
    return MODULE_DIR / "target" / line


def _stamp(line: str) -> Path:
    """Touched after each successful build (``make java`` too): Maven leaves up-to-date files alone."""
    return _target(line) / "built.stamp"


def _needs_build(line: str) -> bool:
    stamp = _stamp(line)
    if not stamp.exists() or not (_target(line) / "classpath.txt").exists():
        return True
    built = stamp.stat().st_mtime
    sources = [MODULE_DIR / "pom.xml", *MODULE_DIR.joinpath("src").rglob("*.java")]
    return any(p.stat().st_mtime > built for p in sources)


def build(line: str, *, timeout: float = 600.0) -> None:
    """Build one client line (``make java``) unless it is up to date."""
    if not _needs_build(line):
        return
    mvn = shutil.which("mvn")
    if mvn is None or find_java() is None:
        raise KafkaJavaError(skip_reason() or "java/mvn missing")
    proc = subprocess.run(
        [mvn, *mvn_args(line)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0 or not (_target(line) / "classpath.txt").exists():
        raise KafkaJavaError(f"mvn build of {line} failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}")
    _stamp(line).touch()


def parse_results(stdout: str) -> list[dict[str, Any]]:
    return [
        json.loads(line[len(RESULT_PREFIX) :])
        for line in stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def run_kafka_java(line: str, *args: str, timeout: float = 60.0) -> Run:
    """Run ``KafkaCompat <args>`` with the client of ``line``; raises KafkaJavaError on failure."""
    build(line)
    target = _target(line)
    cp = os.pathsep.join([str(target / "classes"), (target / "classpath.txt").read_text().strip()])
    cmd = [find_java() or "java", *JVM_ARGS, "-cp", cp, MAIN_CLASS, *args]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, errors="replace"
        )
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise KafkaJavaError(f"{line} {' '.join(args)} timed out after {timeout:.0f}s:\n{err[-4000:]}") from e
    if proc.returncode != 0:
        raise KafkaJavaError(f"{line} {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return Run(parse_results(proc.stdout), proc.stderr)


def of_type(results: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in results if r.get("type") == kind]
