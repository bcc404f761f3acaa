"""Frontend state a slave copies from its master, as it copies topics and offsets (slave_sync.py).

Core imports no frontend, so a frontend whose state lives outside the commit log (the Kafka
transaction coordinator's ``kafkaTransactions.json``) registers a provider here by name. The master
serves ``dump()`` to REPLICATED_STATE (9903, ferrymq's own; processors/replication.py); the slave
pulls every registered name each ``slaveSyncInterval`` and hands the bytes to ``load``; when the
controller elects the slave (``Broker.become_master``) each provider's ``promoted`` takes over what
it loaded (e.g. finishes the transactions the old master left open).
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("ferrymq.slave_sync")


class ReplicatedState(Protocol):
    def dump(self) -> bytes:
        """On the master: the whole state, as the slave's ``load`` reads it."""
        ...

    def load(self, data: bytes) -> None:
        """On a slave: replace the state with the master's; ValueError if unreadable."""
        ...

    async def promoted(self) -> None:
        """This broker became master: act on the state copied so far."""
        ...


class ReplicatedStates:
    """The providers registered by this broker's frontends, by name."""

    def __init__(self) -> None:
        self.providers: dict[str, ReplicatedState] = {}

    def register(self, name: str, provider: ReplicatedState) -> None:
        self.providers[name] = provider

    def unregister(self, name: str) -> None:
        self.providers.pop(name, None)

    async def promoted(self) -> None:
        for name, provider in list(self.providers.items()):
            try:
                await provider.promoted()
            except Exception:  # one frontend's failure must not stop the broker taking writes
                log.exception("replicated state %s not taken over", name)
