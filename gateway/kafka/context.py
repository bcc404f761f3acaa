"""What a Kafka API handler gets besides its request: the frontend, the connection, the header.

A handler is ``async def handle(ctx: RequestContext, request: <kio request for that version>)
-> <kio response for that version>``; it may return None only where the protocol sends no
response (Produce with acks=0). Handlers reach core through ``ctx.frontend.broker`` and core's
API, never around it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ferrymq.gateway.kafka.connection import KafkaConnection
    from ferrymq.gateway.kafka.frontend import KafkaFrontend


@dataclass(slots=True)
class RequestContext:
    frontend: KafkaFrontend
    conn: KafkaConnection  # .peer "host:port", .client_id from the request header (or None)
    api_key: int
    api_version: int
    correlation_id: int
    #: the request frame's size (what Kafka counts against producer_byte_rate)
    size: int = 0
    #: a byte-rate quota's throttle time the handler found (Produce, Fetch); the connection puts the larger
    #: of it and the request-time quota's into the response and mutes for it (KIP-219)
    throttle_ms: int = 0


#: kio request dataclass in, kio response dataclass out (None: no response, acks=0 Produce)
Handler = Callable[[RequestContext, Any], Awaitable[Any]]
