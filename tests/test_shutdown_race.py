"""Stopping a service in the loop turn its wake-up arrives in (a topic created, a delayed message
stored, a flush asked for) must still stop it. On Python 3.11 ``asyncio.wait_for`` returns the
awaited result instead of raising when the cancellation and the completion meet (CPython
gh-86296), so a background loop built on it ran on and ``stop()`` awaited it forever; ``ferrymq
serve`` then hung in "shutting down" when SIGTERM came right after the Kafka frontend's start
kicked the name-server registrar."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from ferrymq.cli.testing import FerryServer
from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.store import MessageStore

STOP_TIMEOUT = 5.0


async def _stops(stop: Coroutine[Any, Any, None]) -> bool:
    """Whether ``stop`` finishes within STOP_TIMEOUT. Waited for from outside: a stop() that awaits a
    cancelled task with ``except CancelledError: pass`` would swallow a timeout's cancellation too."""
    task = asyncio.create_task(stop)
    done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    return task in done


def _wake_and_stop(
    broker: Broker, service: str
) -> tuple[Callable[[], None], Callable[[], Coroutine[Any, Any, None]]]:
    if service == "registrar":
        assert broker.registrar is not None
        return broker.registrar.kick, broker.registrar.stop
    loop = broker.schedule if service == "schedule" else broker.timer
    return loop.wake, loop.stop


@pytest.mark.parametrize("service", ["registrar", "schedule", "timer"])
def test_a_wakeup_in_the_turn_of_stop_does_not_keep_a_broker_loop_running(
    tmp_path: Path, service: str
) -> None:
    async def scenario() -> None:
        # no name server: the registrar's first round has nothing to await, so one turn puts
        # every loop in its wait
        broker = Broker(BrokerConfig(listenPort=0, listenHost="127.0.0.1", storePathRootDir=tmp_path))
        await broker.start()
        try:
            await asyncio.sleep(0)
            wake, stop = _wake_and_stop(broker, service)
            wake()
            assert await _stops(stop()), f"{service} did not stop"
        finally:
            assert await _stops(broker.stop()), "the broker did not stop"

    asyncio.run(scenario())
    assert not (tmp_path / "abort").exists()


def test_a_flush_request_in_the_turn_of_shutdown_does_not_keep_the_flush_loop_running(
    tmp_path: Path,
) -> None:
    store = MessageStore(BrokerConfig(storePathRootDir=tmp_path, mappedFileSizeCommitLog=1 << 20))

    async def scenario() -> None:
        store.start_services()
        await asyncio.sleep(0)  # the flush loop is in its wait
        assert store._flush_wakeup is not None
        store._flush_wakeup.set()  # what a SYNC_FLUSH send does
        assert await _stops(store.shutdown()), "the store did not shut down"

    asyncio.run(scenario())
    assert not (tmp_path / "abort").exists()


def test_sigterm_at_the_ready_line_stops_serve_cleanly(tmp_path: Path) -> None:
    """The end-to-end case: no admin server (whose start and stop take many loop turns), SIGTERM as
    soon as the ready line is out, i.e. just after the Kafka frontend kicked the registrar. The
    race is narrow, so it is run several times within a bounded budget."""
    deadline = time.monotonic() + 12.0
    runs = 0
    while runs < 12 and (runs < 3 or time.monotonic() < deadline):
        server = FerryServer(tmp_path / f"run{runs}", extra_args=["--admin-port", "-1"]).start()
        started = time.monotonic()
        code = server.stop(signal.SIGTERM, timeout=STOP_TIMEOUT)
        took = time.monotonic() - started
        assert code == 0, f"run {runs}: exit {code} after {took:.1f}s\n{server.log_tail()}"
        assert (server.store_dir / "checkpoint").exists()
        assert not (server.store_dir / "abort").exists(), f"run {runs}: the store was not closed"
        runs += 1
