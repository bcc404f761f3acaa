"""Delayed messages (DELAY levels through SCHEDULE_TOPIC_XXXX) and timer messages (TIMER_DELIVER_MS,
TIMER_DELAY_MS, TIMER_DELAY_SEC) against a real ``ferrymq serve``: delivered to their real topic
and queue no earlier than due, and neither lost nor doubled across a broker crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.message import encode_batch_body, properties_to_string
from tests.remoting_helpers import send_v2
from tests.test_consumer_support import (
    SMALL_LOG,
    broker_conn,
    now_ms,
    read_json_file,
    send,
    wait_messages,
    wait_until,
)


def test_levels_and_timers_arrive_when_due_not_before(tmp_path: Path) -> None:
    conf = "messageDelayLevel=1s 2s 3s\ntimerMaxDelaySec=60\n"
    with FerryServer(tmp_path, conf) as server:

        async def run() -> None:
            conn = await broker_conn(server)
            due: dict[bytes, int] = {}  # body -> earliest allowed store time (ms)
            cases = [
                (b"level-1", {"DELAY": "1"}, 1000),
                (b"level-2", {"DELAY": "2"}, 2000),
                (b"level-9-capped-to-3", {"DELAY": "9"}, 3000),
                (b"timer-delay-ms", {"TIMER_DELAY_MS": "1500"}, 1500),
                (b"timer-delay-sec", {"TIMER_DELAY_SEC": "1"}, 1000),
                (b"level-wins-over-timer", {"DELAY": "1", "TIMER_DELAY_SEC": "30"}, 1000),
                (b"plain", {}, 0),
            ]
            for body, props, delay in cases:
                sent = now_ms()
                resp = await send(conn, "DelayT", body, {**props, "KEYS": body.decode()})
                assert resp.code == ResponseCode.SUCCESS, resp.remark
                due[body] = sent + delay
            sent = now_ms()
            resp = await send(conn, "DelayT", b"timer-deliver-ms", {"TIMER_DELIVER_MS": str(sent + 2500)})
            assert resp.code == ResponseCode.SUCCESS
            due[b"timer-deliver-ms"] = sent + 2500

            # refused: a timer beyond timerMaxDelaySec, a timer that is not a number, a delayed batch
            resp = await send(conn, "DelayT", b"x", {"TIMER_DELAY_SEC": "120"})
            assert resp.code == ResponseCode.MESSAGE_ILLEGAL and "max delay" in (resp.remark or "")
            resp = await send(conn, "DelayT", b"x", {"TIMER_DELIVER_MS": "soon"})
            assert resp.code == ResponseCode.MESSAGE_ILLEGAL
            batch = send_v2("DelayT", encode_batch_body([(b"b", 0, properties_to_string({"DELAY": "1"}))]), 0)
            batch.code = RequestCode.SEND_BATCH_MESSAGE
            assert (await conn.invoke(batch)).code == ResponseCode.MESSAGE_ILLEGAL

            got = await wait_messages(conn, "DelayT", len(due), timeout=10)
            assert sorted(m.body for m in got) == sorted(due)
            for m in got:
                assert m.store_timestamp >= due[m.body], f"{m.body!r} delivered early"
                assert m.store_timestamp <= due[m.body] + 2000, f"{m.body!r} delivered late"
                assert "DELAY" not in m.properties  # timer properties stay, as on RocketMQ 5
                assert "REAL_TOPIC" not in m.properties or m.properties["REAL_TOPIC"] == "DelayT"
                assert m.topic == "DelayT" and m.queue_id == 0
                if m.body != b"plain" and m.body != b"timer-deliver-ms":
                    assert m.properties["KEYS"] == m.body.decode()
            conn.close()

        asyncio.run(run())


def test_delayed_and_timer_messages_survive_a_crash(tmp_path: Path) -> None:
    conf = "messageDelayLevel=1s 2s 4s\n" + SMALL_LOG
    server = FerryServer(tmp_path, conf).start()
    try:

        async def before() -> dict[bytes, int]:
            conn = await broker_conn(server)
            due = {}
            for body, props, delay in [
                (b"early-level", {"DELAY": "1"}, 1000),
                (b"early-timer", {"TIMER_DELAY_MS": "1000"}, 1000),
                (b"late-level", {"DELAY": "3"}, 4000),
                (b"late-timer", {"TIMER_DELAY_MS": "4000"}, 4000),
            ]:
                sent = now_ms()
                assert (await send(conn, "CrashDelay", body, props)).code == ResponseCode.SUCCESS
                due[body] = sent + delay
            early = await wait_messages(conn, "CrashDelay", 2, timeout=5)
            assert sorted(m.body for m in early) == [b"early-level", b"early-timer"]
            conn.close()
            return due

        due = asyncio.run(before())
        config = server.store_dir / "config"
        # the early deliveries are recorded (within a second), then the broker crashes
        assert wait_until(
            lambda: (
                (read_json_file(config / "delayOffset.json") or {}).get("offsetTable", {}).get("1") == 1
                and (read_json_file(config / "timerCheckpoint.json") or {}).get("watermark") == 1
            ),
            timeout=5,
        )
        server.kill()
        server.start()

        async def after() -> None:
            conn = await broker_conn(server)
            got = await wait_messages(conn, "CrashDelay", 4, timeout=10)
            bodies = sorted(m.body for m in got)
            assert bodies == sorted(due), bodies  # nothing lost, nothing delivered twice
            for m in got:
                assert m.store_timestamp >= due[m.body], f"{m.body!r} delivered early"
            assert not await wait_messages(conn, "CrashDelay", 1, timeout=1.5, offset=4)
            conn.close()

        asyncio.run(after())
    finally:
        server.stop()
