"""The official Java TransactionMQProducer (rocketmq-client 5.3.3, unmodified) against ferrymq:
commit, rollback and UNKNOW settled by the broker's check, read by the Java lite-pull consumer and
the Python client; a broker kill -9 between the half message and the decision; a producer that
dies before deciding (another producer of the group answers the check); a timer delay inside a
transaction. The Java side is compat-tests/java's TransactionProduce, one JVM per scenario."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import java_support as js
import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.client import LitePullConsumer, MessageExt
from tests.test_consumer_support import wait_until

SKIP_REASON = js.skip_reason()
pytestmark = [
    pytest.mark.compat,
    pytest.mark.slow,
    pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or ""),
]
CONF = "transactionTimeOut=1000\ntransactionCheckInterval=300\n"


def produce(
    server: FerryServer, topic: str, group: str, decisions: str, **options: object
) -> list[dict[str, Any]]:
    return js.run_java(
        "TransactionProduce", server.namesrv_addr, topic, group, decisions, *js._options(options), timeout=120
    )


def java_bodies(server: FerryServer, topic: str, count: int) -> list[str]:
    lines = js.read(
        server.namesrv_addr, topic, f"java-reader-{topic}", count, linger_ms=1500, timeout_ms=30_000
    )
    return sorted(bytes.fromhex(m["body"]).decode() for m in js.of_type(lines, "msg"))


def python_messages(server: FerryServer, topic: str, count: int) -> list[MessageExt]:
    consumer = LitePullConsumer(server.namesrv_addr, group=f"py-reader-{topic}", consume_from="FIRST_OFFSET")
    consumer.subscribe(topic, "*")
    consumer.start()
    try:
        got: list[MessageExt] = []
        deadline = time.monotonic() + 30
        while len(got) < count and time.monotonic() < deadline:
            got.extend(consumer.poll(timeout=0.5))
        got.extend(consumer.poll(timeout=1.0))
        return got
    finally:
        consumer.shutdown()


def test_commit_rollback_and_unknown_resolved_by_check(tmp_path: Path) -> None:
    with FerryServer(tmp_path / "ferrymq", CONF) as server:
        lines = produce(
            server,
            "JTxn",
            "jtxn",
            "c1=COMMIT,r1=ROLLBACK,u1=UNKNOW",
            check="COMMIT",
            stop_file=tmp_path / "stop",
            timeout_ms=6_000,
        )
        states = {r["body"]: r["state"] for r in js.of_type(lines, "send")}
        assert states == {"c1": "COMMIT_MESSAGE", "r1": "ROLLBACK_MESSAGE", "u1": "UNKNOW"}
        assert all(r["status"] == "SEND_OK" and r["transactionId"] for r in js.of_type(lines, "send"))
        checks = js.of_type(lines, "check")
        assert checks and {c["body"] for c in checks} == {"u1"} and checks[0]["topic"] == "JTxn"
        assert java_bodies(server, "JTxn", 2) == ["c1", "u1"]
        got = python_messages(server, "JTxn", 2)
        assert sorted(m.body for m in got) == [b"c1", b"u1"]
        assert all(m.sys_flag & 0xC == 0x8 and "TRAN_MSG" not in m.properties for m in got)


def test_broker_killed_between_half_message_and_decision(tmp_path: Path) -> None:
    """The broker dies (kill -9) while the local transaction runs; after its restart the oneway
    END commits (or, had it been lost, the check would): the message arrives exactly once."""
    with FerryServer(
        tmp_path / "ferrymq", "transactionTimeOut=20000\ntransactionCheckInterval=300\n"
    ) as server:
        half, go = tmp_path / "half", tmp_path / "go"
        cmd = js.java_command(
            "TransactionProduce",
            server.namesrv_addr,
            "JTxnKill",
            "jtxn-kill",
            "k1=COMMIT,k2=ROLLBACK",
            *js._options({"half_file": half, "wait_file": go, "check": "COMMIT", "timeout_ms": 60_000}),
        )
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert wait_until(half.exists, 60)
            server.kill()
            server.start()
            go.touch()
            out, err = proc.communicate(timeout=90)
            sent = js.of_type(js.parse_results(out), "send")
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        assert [r["state"] for r in sent] == ["COMMIT_MESSAGE", "ROLLBACK_MESSAGE"]
        assert java_bodies(server, "JTxnKill", 1) == ["k1"]


def test_producer_dies_before_deciding_another_answers(tmp_path: Path) -> None:
    with FerryServer(tmp_path / "ferrymq", CONF) as server:
        stop = tmp_path / "stop"
        survivor_out: list[dict[str, Any]] = []
        ready = tmp_path / "survivor-ready"

        def survivor() -> None:
            survivor_out.extend(
                produce(
                    server,
                    "JTxnDie",
                    "jtxn-die",
                    "warm=COMMIT",
                    warmup="hello",
                    stop_file=stop,
                    half_file=ready,
                    wait_file=ready,
                    check="COMMIT",
                    timeout_ms=60_000,
                )
            )

        t = threading.Thread(target=survivor)
        t.start()
        try:
            assert wait_until(ready.exists, 60)
            dead = js.run_java(
                "TransactionProduce", server.namesrv_addr, "JTxnDie", "jtxn-die", "orphan=DIE", timeout=120
            )
            assert not js.of_type(dead, "send")  # it halted inside executeLocalTransaction
            assert java_bodies(server, "JTxnDie", 3) == ["hello", "orphan", "warm"]
        finally:
            stop.touch()
            t.join(120)
        assert {c["body"] for c in js.of_type(survivor_out, "check")} == {"orphan"}


def test_timer_delay_inside_a_transaction(tmp_path: Path) -> None:
    with FerryServer(tmp_path / "ferrymq", CONF) as server:
        lines = produce(
            server, "JTxnDelay", "jtxn-delay", "d-commit=COMMIT,d-rollback=ROLLBACK", delay_ms=2000
        )
        sent_at = {r["body"]: r["sentAt"] for r in js.of_type(lines, "send")}
        got = python_messages(server, "JTxnDelay", 1)
        assert [m.body for m in got] == [b"d-commit"]
        assert got[0].store_timestamp >= sent_at["d-commit"] + 2000 - 1500  # due 2 s after the send
