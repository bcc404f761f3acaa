"""Kafka client quotas at the connection: the request-time measure, the throttle field, the mute (KIP-219).

The quotas themselves are core's (core/auth/quotas.py). Produce and Fetch count their bytes once per request
(``KafkaConnection.quota``); the connection counts every request's handler time against request_percentage
(KIP-124) only while some quota of that kind is set. Kafka counts network and I/O thread time, never time a
request waits in purgatory; here ``Timed`` adds up the time the handler's coroutine runs between its awaits,
so a parked fetch or an acks=all wait costs nothing. Over quota the response goes out at once carrying
throttle_time_ms, then the connection reads nothing more for that long (KIP-219; clients of older versions
get the same mute, as Kafka 2.0+ does).
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Coroutine, Generator
from typing import Any

#: handler time in seconds as request_percentage's unit: percent of one thread, per second of rate
PERCENT_PER_SECOND = 100.0


class Timed:
    """Await a coroutine, adding up the time spent running its steps (``busy``, seconds)."""

    __slots__ = ("busy", "coro")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.busy = 0.0

    def __await__(self) -> Generator[Any, Any, Any]:
        coro = self.coro
        value: Any = None
        error: BaseException | None = None
        while True:
            started = time.perf_counter()
            try:
                if error is None:
                    step = coro.send(value)
                else:
                    step, error = coro.throw(error), None
            except StopIteration as done:
                self.busy += time.perf_counter() - started
                return done.value
            self.busy += time.perf_counter() - started
            try:
                value = yield step
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation and errors go on into the handler
                value, error = None, exc


def with_throttle(response: Any, throttle_ms: int) -> Any:
    """The response carrying ``throttle_time_ms`` (every API with the field; others stay as they are)."""
    if response is None or not hasattr(response, "throttle_time"):
        return response
    return dataclasses.replace(response, throttle_time=datetime.timedelta(milliseconds=throttle_ms))
