"""Which brokers are alive, as the controller leader hears their heartbeats (sans-IO: time is
passed in). Not replicated: a new leader starts empty and learns within one heartbeat period,
as RocketMQ's DefaultBrokerHeartbeatManager does. A broker whose heartbeat connection closes
is inactive at once (``drop_channel``): a killed process's sockets close, a cut-off one's do not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ferrymq.namesrv.controller.state import Candidate


@dataclass(slots=True)
class Heartbeat:
    addr: str
    candidate: Candidate
    last_seen: float
    timeout: float  # seconds of silence after which the broker is inactive
    channel: Any = None  # the connection the heartbeats arrive on


class BrokerLiveness:
    def __init__(self) -> None:
        self._beats: dict[str, dict[int, Heartbeat]] = {}

    def heartbeat(
        self,
        broker_name: str,
        broker_id: int,
        addr: str,
        *,
        epoch: int,
        max_offset: int,
        now: float,
        timeout: float,
        priority: int = 0,
        channel: Any = None,
    ) -> None:
        group = self._beats.setdefault(broker_name, {})
        candidate = Candidate(broker_id, epoch, max_offset, priority)
        group[broker_id] = Heartbeat(addr, candidate, now, timeout, channel)

    def drop_channel(self, channel: Any) -> list[tuple[str, int]]:
        """Forget the brokers whose heartbeats came on ``channel`` (it closed); (name, id) of each."""
        gone = []
        for name, group in self._beats.items():
            for bid, hb in list(group.items()):
                if hb.channel is channel:
                    del group[bid]
                    gone.append((name, bid))
        return gone

    def alive(self, broker_name: str, now: float) -> dict[int, Candidate]:
        """The group's brokers heard from within their timeout, with their election facts."""
        return {
            bid: hb.candidate
            for bid, hb in self._beats.get(broker_name, {}).items()
            if now - hb.last_seen <= hb.timeout
        }

    def expire(self, now: float) -> list[tuple[str, int]]:
        """Forget brokers silent past their timeout; (broker name, id) of each one dropped."""
        gone = []
        for name, group in self._beats.items():
            for bid, hb in list(group.items()):
                if now - hb.last_seen > hb.timeout:
                    del group[bid]
                    gone.append((name, bid))
        return gone
