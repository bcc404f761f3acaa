"""Run the Java compat scenarios (compat-tests/java) from Python.

The scenarios are small ``main`` classes in ``io.ferrymq.compat`` that drive the official Apache
RocketMQ Java client (``org.apache.rocketmq:rocketmq-client``, unmodified) and print one
``RESULT <json>`` line per message (see the class comments in compat-tests/java). This module finds
``java`` and ``mvn``, builds the module the way ``make java`` does, and runs a scenario::

    lines = run_java("Produce", namesrv, topic, group, "10", "--mode", "sync", timeout=60)
    sent = of_type(lines, "send")

It also holds the checks shared by compat-tests/test_java_rocketmq.py and bench/rocketmq_ref.py
(which runs the same scenarios against real Apache RocketMQ), and ``rocketmq_reference()``, which
loads bench/rocketmq_ref.py without needing the repository root on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
JAVA_DIR = REPO_ROOT / "compat-tests" / "java"
TARGET_DIR = JAVA_DIR / "target"
CLASSES_DIR = TARGET_DIR / "classes"
CLASSPATH_FILE = TARGET_DIR / "classpath.txt"
PACKAGE = "io.ferrymq.compat"
RESULT_PREFIX = "RESULT "

# The Makefile's `java` target runs exactly this (from the repository root).
MVN_ARGS = [
    "-q",
    "-B",
    "-f",
    "compat-tests/java/pom.xml",
    "-DskipTests",
    "package",
    "dependency:build-classpath",
    "-Dmdep.outputFile=target/classpath.txt",
]

# Small client JVMs: the machine has 2 cores and is shared.
DEFAULT_JVM_ARGS = [
    "-Xms32m",
    "-Xmx192m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-Xss512k",
]

# Properties every scenario message carries (see Common.buildMessage in the Java module).
NON_ASCII_VALUE = "h\u00e9llo w\u00f6rld \u2713"
BINARY_TAIL = bytes([0x00, 0xFF, 0x01, 0x02, 0x7F, 0x80])


class JavaToolsMissing(RuntimeError):
    """java or mvn is not installed; the Java compat tests must be skipped."""


class JavaScenarioError(RuntimeError):
    """A scenario exited non-zero or timed out; carries its output."""

    def __init__(
        self, message: str, *, returncode: int | None, stdout: str, stderr: str, results: list[dict[str, Any]]
    ) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.results = results


def find_java() -> str | None:
    """The java executable: $JAVA_HOME/bin/java, else java on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def find_mvn() -> str | None:
    return shutil.which("mvn")


def skip_reason() -> str | None:
    """None when java and mvn are both present, else a loud reason for pytest.skip."""
    missing = [name for name, path in (("java", find_java()), ("mvn", find_mvn())) if path is None]
    if not missing:
        return None
    return (
        f"!!! {' and '.join(missing)} not found on PATH: the Java RocketMQ compat tests are SKIPPED. "
        "Install a JDK (17+) and Maven 3 to run them !!!"
    )


def _needs_build() -> bool:
    """True when the classpath file or a class is missing, or a source is newer than the oldest class."""
    classes = list(CLASSES_DIR.rglob("*.class")) if CLASSES_DIR.is_dir() else []
    if not CLASSPATH_FILE.exists() or not classes:
        return True
    built = min(p.stat().st_mtime for p in classes)
    sources = [JAVA_DIR / "pom.xml", *JAVA_DIR.joinpath("src").rglob("*.java")]
    return any(p.stat().st_mtime > built for p in sources)


def build(*, force: bool = False, timeout: float = 900.0) -> None:
    """Build the module (``make java``) unless its classes and classpath are up to date."""
    if not force and not _needs_build():
        return
    mvn = find_mvn()
    if mvn is None or find_java() is None:
        raise JavaToolsMissing(skip_reason() or "java/mvn missing")
    try:
        proc = subprocess.run(
            [mvn, *MVN_ARGS],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"mvn build of compat-tests/java timed out after {timeout:.0f}s") from e
    if proc.returncode != 0 or not CLASSPATH_FILE.exists():
        raise RuntimeError(
            f"mvn build of compat-tests/java failed (exit {proc.returncode}):\n"
            f"{_tail(proc.stdout)}\n{_tail(proc.stderr)}"
        )


def classpath() -> str:
    """target/classes plus the dependency classpath written by dependency:build-classpath."""
    build()
    deps = CLASSPATH_FILE.read_text().strip()
    return os.pathsep.join(p for p in (str(CLASSES_DIR), deps) if p)


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def parse_results(stdout: str) -> list[dict[str, Any]]:
    """The ``RESULT {json}`` lines of a scenario's stdout, in order; other lines are ignored."""
    out: list[dict[str, Any]] = []
    for line in stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            out.append(json.loads(line[len(RESULT_PREFIX) :]))
    return out


def _log_root() -> str:
    path = Path(tempfile.gettempdir()) / "ferrymq-compat-logs"
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


def java_command(main_class: str, *args: str, jvm_args: Sequence[str] = ()) -> list[str]:
    java = find_java()
    if java is None:
        raise JavaToolsMissing(skip_reason() or "java missing")
    if "." not in main_class:
        main_class = f"{PACKAGE}.{main_class}"
    return [
        java,
        *DEFAULT_JVM_ARGS,
        f"-Drocketmq.log.root={_log_root()}",
        "-Drocketmq.log.level=warn",
        *jvm_args,
        "-cp",
        classpath(),
        main_class,
        *args,
    ]


def run_java(
    main_class: str,
    *args: str,
    timeout: float = 120.0,
    check: bool = True,
    jvm_args: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """Run a scenario and return its parsed result lines.

    Raises JavaScenarioError (with the program's stderr) when it exits non-zero and ``check`` is set,
    or when it outlives ``timeout`` (the JVM is killed first). ``main_class`` may be short
    ("Produce") or fully qualified.
    """
    cmd = java_command(main_class, *[str(a) for a in args], jvm_args=jvm_args)
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, errors="replace"
        )
    except subprocess.TimeoutExpired as e:  # subprocess.run has already killed the JVM
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise JavaScenarioError(
            f"{main_class} {' '.join(args)} timed out after {timeout:.0f}s; stderr:\n{_tail(err)}",
            returncode=None,
            stdout=out,
            stderr=err,
            results=parse_results(out),
        ) from e
    results = parse_results(proc.stdout)
    if check and proc.returncode != 0:
        raise JavaScenarioError(
            f"{main_class} {' '.join(args)} exited {proc.returncode}; stderr:\n{_tail(proc.stderr)}",
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            results=results,
        )
    return results


def run_acl_clients(namesrv: str, access_key: str, secret_key: str) -> dict[str, dict[str, Any]]:
    """AclClients (the Java client's AclClientRPCHook) against topics AclT and AclDenied: each scenario's
    result (allowed, read, denied, wrongSignature), asserting the ones every ACL version agrees on."""
    results = run_java(
        "AclClients",
        namesrv,
        "AclT",
        "AclDenied",
        access_key,
        secret_key,
        "--timeout-ms",
        "20000",
        timeout=180,
    )
    by = {r["scenario"]: r for r in results if r["type"] in ("send", "sendFailed", "read")}
    assert by["allowed"] == {"type": "send", "scenario": "allowed", "status": "SEND_OK"}, by
    assert by["read"]["found"] is True, by
    for refused in ("denied", "wrongSignature"):
        assert by[refused]["type"] == "sendFailed", by
        assert by[refused]["code"] == 16, by  # NO_PERMISSION
    return by


def _options(options: Mapping[str, object]) -> list[str]:
    out: list[str] = []
    for name, value in options.items():
        if value is None:
            continue
        out += [f"--{name.replace('_', '-')}", str(value)]
    return out


def produce(
    namesrv: str, topic: str, group: str, count: int, *, timeout: float = 120.0, **options: object
) -> list[dict[str, Any]]:
    """Produce NAMESRV TOPIC GROUP COUNT --mode ... (options: mode, tags, batch_size, order_keys,
    body_size, run_id, send_timeout_ms, timeout_ms)."""
    return run_java("Produce", namesrv, topic, group, str(count), *_options(options), timeout=timeout)


def read(
    namesrv: str,
    topic: str,
    group: str,
    count: int,
    *,
    timeout: float = 120.0,
    check: bool = True,
    **options: object,
) -> list[dict[str, Any]]:
    """LitePullRead NAMESRV TOPIC GROUP COUNT (options: mode, filter, seek, from_, timeout_ms,
    linger_ms, poll_ms, pull_batch)."""
    if "from_" in options:
        options["from"] = options.pop("from_")
    return run_java(
        "LitePullRead", namesrv, topic, group, str(count), *_options(options), timeout=timeout, check=check
    )


def of_type(results: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in results if r.get("type") == kind]


def summary(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    found = of_type(results, "summary")
    assert found, f"no summary line in {results!r}"
    return found[-1]


def unique_name(prefix: str) -> str:
    """A topic or group name that no other test uses (letters, digits, '_' and '-' only)."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def java_string_hash(s: str) -> int:
    """Java's String.hashCode (UTF-16 code units, 32-bit signed)."""
    h = 0
    data = s.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + int.from_bytes(data[i : i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def expected_body(mode: str, run_id: str, index: int) -> bytes:
    """The body Common.buildMessage gives message ``index`` (without --body-size padding)."""
    return f"ferrymq|{mode}|{run_id}|{index}".encode() + BINARY_TAIL


# ---------------------------------------------------------------------------------------------
# Checks shared by the pytest tests and bench/rocketmq_ref.py --compat. They raise AssertionError.
# ---------------------------------------------------------------------------------------------


def is_message_id(value: object) -> bool:
    """32 hex digits for an IPv4 host, 56 for IPv6: the client's UNIQ_KEY (ip + pid + classloader hash +
    time + counter) and the broker's offsetMsgId (store host + port + commit-log offset) alike."""
    if not isinstance(value, str) or len(value) not in (32, 56):
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


def check_sent(sent: Sequence[dict[str, Any]], count: int, *, mode: str, oneway: bool = False) -> None:
    """Every message was acknowledged with a well-formed SendResult."""
    assert len(sent) == count, f"{mode}: {len(sent)} send results for {count} messages"
    assert sorted(s["index"] for s in sent) == list(range(count)), f"{mode}: indexes {sent!r}"
    for s in sent:
        msg_id = s["msgId"]
        assert is_message_id(msg_id), f"{mode}: msgId {msg_id!r}"
        if oneway:
            assert s["status"] == "ONEWAY"
            continue
        assert s["status"] == "SEND_OK", f"{mode}: {s!r}"
        assert is_message_id(s["offsetMsgId"]), f"{mode}: offsetMsgId {s['offsetMsgId']!r}"
        assert s["queueId"] >= 0 and s["queueOffset"] >= 0, f"{mode}: {s!r}"
    if not oneway:
        keys = [(s["queueId"], s["queueOffset"]) for s in sent]
        assert len(set(keys)) == len(keys), f"{mode}: duplicate (queueId, queueOffset) in {keys}"
        offsets = [s["offsetMsgId"] for s in sent]
        assert len(set(offsets)) == len(offsets), f"{mode}: duplicate offsetMsgId"
    ids = [s["msgId"] for s in sent]
    assert len(set(ids)) == len(ids), f"{mode}: duplicate msgId"


def check_dense_offsets(sent: Sequence[dict[str, Any]], *, mode: str) -> None:
    """On a fresh topic each queue's offsets are exactly 0..n-1."""
    per_queue: dict[int, list[int]] = {}
    for s in sent:
        per_queue.setdefault(s["queueId"], []).append(s["queueOffset"])
    for qid, offsets in per_queue.items():
        assert sorted(offsets) == list(range(len(offsets))), f"{mode}: queue {qid} offsets {sorted(offsets)}"


def check_same_message(sent: dict[str, Any], got: dict[str, Any], *, positions: bool = True) -> None:
    """A received message equals what was sent: body, tags, keys, user properties (and position)."""
    where = f"message #{sent.get('index')} ({sent['msgId']})"
    if sent.get("mode") == "batch":
        # Apache RocketMQ 5.3.3 appends the batch's own properties to every message of a batch, so a
        # reader sees the batch's UNIQ_KEY on all of them, not the per-message ids of the SendResult.
        # Either behaviour is accepted; the position (offsetMsgId) identifies the message.
        assert is_message_id(got["msgId"]), where
    else:
        assert got["msgId"] == sent["msgId"], where
    assert got["topic"] == sent["topic"], f"{where}: topic {got['topic']!r}"
    assert got["body"] == sent["body"], f"{where}: body {got['body']!r} != {sent['body']!r}"
    assert got["tags"] == sent["tags"], f"{where}: tags {got['tags']!r} != {sent['tags']!r}"
    assert got["keys"] == sent["keys"], f"{where}: keys {got['keys']!r} != {sent['keys']!r}"
    assert got["properties"] == sent["properties"], (
        f"{where}: {got['properties']!r} != {sent['properties']!r}"
    )
    assert got["sysProperties"].get("UNIQ_KEY") == got["msgId"], f"{where}: {got['sysProperties']!r}"
    if positions and sent.get("queueId", -1) >= 0:
        assert (got["queueId"], got["queueOffset"]) == (sent["queueId"], sent["queueOffset"]), where
        assert got["offsetMsgId"] == sent["offsetMsgId"], f"{where}: offsetMsgId {got['offsetMsgId']!r}"


def check_roundtrip(
    sent: Sequence[dict[str, Any]], received: Sequence[dict[str, Any]], *, positions: bool = True
) -> None:
    """Exactly the sent messages came back (no loss, no duplicates), each one intact.

    Messages are matched by msgId (the client's UNIQ_KEY), or by offsetMsgId for batch sends (see
    check_same_message).
    """
    key = "offsetMsgId" if any(s.get("mode") == "batch" for s in sent) else "msgId"
    counts: dict[str, int] = {}
    for r in received:
        counts[r[key]] = counts.get(r[key], 0) + 1
    dups = sorted(k for k, n in counts.items() if n > 1)
    assert not dups, f"{len(dups)} messages delivered more than once: {dups[:5]}"
    by_key = {r[key]: r for r in received}
    missing = [s[key] for s in sent if s[key] not in by_key]
    assert not missing, f"{len(missing)} of {len(sent)} sent messages not received ({key}): {missing[:5]}"
    extra = set(by_key) - {s[key] for s in sent}
    assert not extra, f"{len(extra)} unexpected messages received ({key}): {sorted(extra)[:5]}"
    for s in sent:
        check_same_message(s, by_key[s[key]], positions=positions)


def check_ordered(sent: Sequence[dict[str, Any]], received: Sequence[dict[str, Any]], queues: int) -> None:
    """Same order key, same queue (the selector's choice), and per queue the read order is the send order."""
    for s in sent:
        want = java_string_hash(s["orderKey"]) % queues  # Math.floorMod
        assert s["queueId"] == want, (
            f"orderKey {s['orderKey']} went to queue {s['queueId']}, selector chose {want}"
        )
    by_key: dict[str, list[int]] = {}
    for r in sorted(received, key=lambda r: (r["queueId"], r["queueOffset"])):
        by_key.setdefault(r["properties"]["orderKey"], []).append(int(r["properties"]["idx"]))
    for key, idxs in by_key.items():
        assert idxs == sorted(idxs), f"orderKey {key}: read order {idxs} is not the send order"


# ---------------------------------------------------------------------------------------------
# Scenarios: produce with Java, read back with Java, check. Used by the pytest tests and by
# bench/rocketmq_ref.py --compat (against real Apache RocketMQ). Each raises on failure.
# ---------------------------------------------------------------------------------------------


def scenario_roundtrip(namesrv: str, mode: str, count: int = 20, **produce_options: Any) -> None:
    """Send COUNT messages in MODE to a fresh topic, read them back (subscribe mode), compare."""
    topic, group = unique_name(f"Java_{mode}"), unique_name("cg")
    sent = of_type(produce(namesrv, topic, unique_name("pg"), count, mode=mode, **produce_options), "send")
    check_sent(sent, count, mode=mode, oneway=mode == "oneway")
    if mode != "oneway":
        check_dense_offsets(sent, mode=mode)
    got = of_type(read(namesrv, topic, group, count, timeout_ms=30000, linger_ms=1000), "msg")
    check_roundtrip(sent, got)


def scenario_ordered(namesrv: str, count: int = 24, order_keys: int = 4) -> None:
    """MessageQueueSelector by order key; read back in assign mode from the beginning, in order."""
    topic = unique_name("Java_ordered")
    out = produce(namesrv, topic, unique_name("pg"), count, mode="ordered", order_keys=order_keys)
    sent = of_type(out, "send")
    check_sent(sent, count, mode="ordered")
    check_dense_offsets(sent, mode="ordered")
    out = read(namesrv, topic, unique_name("cg"), count, mode="assign", seek="begin", timeout_ms=30000)
    queues = of_type(out, "queue")
    assert queues, "assign mode printed no queues"
    check_roundtrip(sent, of_type(out, "msg"))
    check_ordered(sent, of_type(out, "msg"), len(queues))


def scenario_assign_seek(namesrv: str, count: int = 16, offset: int = 2) -> None:
    """Assign every queue and seek each to OFFSET: exactly the messages at or after it arrive."""
    topic = unique_name("Java_seek")
    sent = of_type(produce(namesrv, topic, unique_name("pg"), count), "send")
    check_sent(sent, count, mode="sync")
    want = [s for s in sent if s["queueOffset"] >= offset]
    out = read(namesrv, topic, unique_name("cg"), len(want), mode="assign", seek=offset, linger_ms=1500)
    check_roundtrip(want, of_type(out, "msg"))


def scenario_tag_filter(namesrv: str, count: int = 30) -> None:
    """Tags cycle TagA/TagB/TagC; "TagA || TagB" (subscribe) and "TagC" (assign) get exactly theirs."""
    topic = unique_name("Java_tags")
    sent = of_type(produce(namesrv, topic, unique_name("pg"), count, tags="TagA,TagB,TagC"), "send")
    check_sent(sent, count, mode="sync")
    want = [s for s in sent if s["tags"] in ("TagA", "TagB")]
    out = read(namesrv, topic, unique_name("cg"), len(want), filter="TagA || TagB", linger_ms=2000)
    check_roundtrip(want, of_type(out, "msg"))
    want_c = [s for s in sent if s["tags"] == "TagC"]
    out = read(namesrv, topic, unique_name("cg"), len(want_c), mode="assign", filter="TagC", linger_ms=1500)
    check_roundtrip(want_c, of_type(out, "msg"))


# name -> scenario(namesrv_addr), in the order bench/rocketmq_ref.py --compat runs them.
SCENARIOS: dict[str, Callable[[str], None]] = {
    "sync send + subscribe read": lambda ns: scenario_roundtrip(ns, "sync"),
    "async send + subscribe read": lambda ns: scenario_roundtrip(ns, "async"),
    "oneway send + subscribe read": lambda ns: scenario_roundtrip(ns, "oneway"),
    "batch send + subscribe read": lambda ns: scenario_roundtrip(ns, "batch", batch_size=8),
    "ordered send + assign read": scenario_ordered,
    "assign + seek": scenario_assign_seek,
    "tag filter": scenario_tag_filter,
}


def rocketmq_reference() -> ModuleType:
    """bench/rocketmq_ref.py as a module (start/stop Apache RocketMQ from Maven jars)."""
    name = "ferrymq_bench_rocketmq_ref"
    if name in sys.modules:
        return sys.modules[name]
    path = REPO_ROOT / "bench" / "rocketmq_ref.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
