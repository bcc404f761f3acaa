"""Timer messages far in the future stay on disk: memory holds those due within the window, at
most ``timerMaxInMemory``, and the ones due soon still arrive on time, never early. In-process:
the timer service's structures are inspected."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path

from ferrymq.core.broker.broker import Broker
from ferrymq.core.broker.schedule import load_message, stored_tags_code
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.message import MessageExt, properties_to_string

FAR = 100_000
SOON = 20
BOUND = 1000
#: how late a due timer may be stored: scheduling on a loaded 2-core machine, not a speed target
LATE_MS = 5000


def _config(tmp_path: Path) -> BrokerConfig:
    return BrokerConfig(
        listen_port=0,
        listen_host="127.0.0.1",
        store_path_root_dir=tmp_path,
        timer_max_in_memory=BOUND,
        timer_memory_window_ms=60_000,
    )


def _put_timer(broker: Broker, body: bytes, due: int) -> None:
    """What SEND_MESSAGE does with TIMER_DELIVER_MS (the hook, then the put)."""
    props = {"TIMER_DELIVER_MS": str(due)}
    topic, qid = broker.timer.transform("TimerT", 0, props)
    broker.store.put_message(
        topic, qid, body, properties_to_string(props), tags_code=stored_tags_code(topic, props)
    )


def _arrival_of(broker: Broker, n: int) -> asyncio.Event:
    """Set once ``n`` messages reached TimerT queue 0."""
    arrived = asyncio.Event()
    broker.store.arrival_listeners.append(
        lambda topic, *_: arrived.set() if broker.store.max_offset("TimerT", 0) >= n else None
    )
    return arrived


def _delivered(broker: Broker, n: int) -> list[MessageExt]:
    cq = broker.store.consume_queues[("TimerT", 0)]
    out = []
    for q in range(n):
        unit = cq.unit(q)
        assert unit is not None
        m = load_message(broker.store, unit[0])
        assert m is not None
        out.append(m)
    return out


def _held(broker: Broker) -> int:
    return max(len(broker.timer.pending), len(broker.timer.heap))


def test_100000_far_timers_stay_on_disk_and_the_soon_ones_fire_on_time(tmp_path: Path) -> None:
    due: dict[bytes, int] = {}

    async def first() -> None:
        broker = Broker(_config(tmp_path))
        await broker.start()
        arrived = _arrival_of(broker, SOON)
        try:
            now = int(time.time() * 1000)
            soon_at = set(random.Random(7).sample(range(FAR), SOON - 1)) | {FAR - 1}
            for i in range(FAR):
                _put_timer(broker, b"far", now + 3_600_000 + i)
                if i in soon_at:
                    body = f"soon-{i}".encode()
                    due[body] = now + 1500 + len(due) * 50
                    _put_timer(broker, body, due[body])
            loaded = int(time.time() * 1000)  # the timer could not run while the loop above did
            broker.timer.wake()
            async with asyncio.timeout(30):
                await arrived.wait()
            print(f"held in memory: {_held(broker)}, sweeps {broker.timer.sweeps}")
            assert _held(broker) <= BOUND
            for m in _delivered(broker, SOON):
                # never early; late only by scheduling (a soon timer stuck behind the far ones would
                # wait for the 60 s window), counted from when it was due or could first run
                assert due[m.body] <= m.store_timestamp <= max(due[m.body], loaded) + LATE_MS, m.body
            assert broker.store.max_offset("TimerT", 0) == SOON
        finally:
            await broker.stop()

    async def after_restart() -> None:
        broker = Broker(_config(tmp_path))
        await broker.start()
        try:
            broker.timer.tick(int(time.time() * 1000))
            assert _held(broker) <= BOUND
            assert broker.timer.deferred_min is not None  # the far ones wait on disk
            assert broker.store.max_offset("TimerT", 0) == SOON
        finally:
            await broker.stop()

    asyncio.run(first())
    asyncio.run(after_restart())


def test_more_timers_due_within_the_window_than_memory_holds_all_arrive_never_early(tmp_path: Path) -> None:
    n = 3 * BOUND

    async def main() -> None:
        broker = Broker(_config(tmp_path))
        await broker.start()
        done = _arrival_of(broker, n)
        try:
            start = int(time.time() * 1000) + 1000
            dues = [start + random.Random(i).randrange(2000) for i in range(n)]
            for i, d in enumerate(dues):
                _put_timer(broker, str(i).encode(), d)
            broker.timer.tick(int(time.time() * 1000))
            assert _held(broker) <= BOUND
            async with asyncio.timeout(30):
                await done.wait()
            for m in _delivered(broker, n):
                assert m.store_timestamp >= dues[int(m.body)]
            print(f"sweeps: {broker.timer.sweeps}")
        finally:
            await broker.stop()

    asyncio.run(main())
