"""What /metrics shows of each listener and each kind of parked request.

The counters live with their owners (a remoting server's ``ConnectionGate``, the Kafka frontend's,
the HA server's connection set, uvicorn's); the broker keeps only this registry of them
(``Broker.listeners``, ``Broker.parked``), read at scrape time, so no request path pays for it.
Rejection reasons: ``connection_cap``, ``bad_frame``, ``frame_too_big``, ``in_flight_cap``
(reading held back: ferrymq delays a client past its in-flight cap instead of failing it),
``parked_pull_cap`` (SYSTEM_BUSY), ``unsupported_api`` (Kafka).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from typing import Protocol


class ListenerView(Protocol):
    @property
    def open(self) -> int:
        """Connections open now."""
        ...

    @property
    def rejected(self) -> Mapping[str, int]:
        """Requests or connections refused (or held back) since start, by reason."""
        ...


class CountedListener:
    """A listener whose owner counts its connections some other way (HA, admin)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self._count = count
        self.rejected: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return self._count()
