"""The Kafka group coordinator of one broker (stub; the state machine and timers follow)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ferrymq.gateway.kafka.frontend import KafkaFrontend


class GroupCoordinator:
    """Owns this broker's classic Kafka groups; started and stopped by the frontend."""

    def __init__(self, frontend: KafkaFrontend) -> None:
        self.frontend = frontend

    async def start(self) -> None:
        """Start the timers that expire sessions and complete rebalances."""

    async def stop(self) -> None:
        """Stop the timers; members must rejoin after a restart, as with Kafka."""
