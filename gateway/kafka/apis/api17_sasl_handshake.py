"""SaslHandshake (key 17), version 1: pick the SASL mechanism of a SASL listener's connection (sasl.py).

An unknown or disabled mechanism is UNSUPPORTED_SASL_MECHANISM with the enabled list, then the connection
closes; a handshake out of turn is ILLEGAL_SASL_STATE, then close; on a PLAINTEXT listener ILLEGAL_SASL_STATE,
as Kafka's KafkaApis answers. A second handshake after authentication starts a KIP-368 re-authentication.
Leaves out: version 0 (its tokens follow without Kafka headers; every current client uses version 1).
"""

from __future__ import annotations

import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import respond

log = logging.getLogger("ferrymq.kafka")


@api(17, 1, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    sasl = ctx.conn.sasl
    if sasl is None:
        log.warning(
            "kafka client %s: SaslHandshake on a %s listener", ctx.conn.peer, ctx.conn.listener.protocol
        )
        return respond(request, {"error_code": ErrorCode.illegal_sasl_state, "mechanisms": ()})
    error = sasl.handshake(request.mechanism)
    if error != ErrorCode.none:
        log.warning(
            "kafka client %s: SaslHandshake %r refused (%s; enabled %s); closing the connection",
            ctx.conn.peer,
            request.mechanism,
            error.name,
            ",".join(sasl.mechanisms),
        )
        ctx.conn.close_after_response = True
    return respond(request, {"error_code": error, "mechanisms": tuple(sasl.mechanisms)})
