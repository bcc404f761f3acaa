"""SaslAuthenticate (key 36), versions 0-2: one SASL token each way (sasl.py runs PLAIN and SCRAM).

Wrong credentials are SASL_AUTHENTICATION_FAILED with Kafka's generic message, logged with the peer, and the
connection closes after the response; v1+ has session_lifetime_ms (KIP-368, 0 when sessions do not expire).
On a PLAINTEXT listener, or before SaslHandshake, ILLEGAL_SASL_STATE.
Leaves out: nothing.
"""

from __future__ import annotations

import datetime
import logging
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import respond
from ferrymq.gateway.kafka.sasl import State, Step, now_ms

log = logging.getLogger("ferrymq.kafka")


@api(36, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    conn = ctx.conn
    sasl = conn.sasl
    if sasl is None:
        step = Step(
            ErrorCode.illegal_sasl_state, f"SaslAuthenticate on a {conn.listener.protocol} listener", b""
        )
    else:
        step = sasl.authenticate(bytes(request.auth_bytes), now_ms())
        if step.error == ErrorCode.none and sasl.principal is not None and sasl.state is State.COMPLETE:
            conn.authenticated(sasl.principal)
            log.debug("kafka client %s authenticated as %s (%s)", conn.peer, sasl.principal, sasl.mechanism)
    if step.close:
        log.warning(
            "kafka client %s: SASL %s authentication failed (%s: %s); closing the connection",
            conn.peer,
            sasl.mechanism if sasl else "-",
            step.error.name,
            step.message,
        )
        conn.close_after_response = True
    return respond(
        request,
        {
            "error_code": step.error,
            "error_message": step.message,
            "auth_bytes": step.auth_bytes,
            "session_lifetime": datetime.timedelta(milliseconds=step.session_lifetime_ms),
        },
    )
