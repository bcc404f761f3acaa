"""Kafka's client quotas (core/auth/quotas.py) on the remoting port, so one principal's limits hold whatever
protocol it speaks.

Who: ``User:<accessKey>`` of a request the ACL verified (aclEnable on, signed); anyone else is
``User:ANONYMOUS``. The client id is the RocketMQ clientId the connection's last HEART_BEAT carried ("" before
the first; a peer the ACL lets in by address, globalWhiteRemoteAddresses, is taken at its AccessKey's word).
What counts, once per request: SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE
(320) their body's bytes against producer_byte_rate; PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361) the bytes
of their response's body against consumer_byte_rate. Over quota the response goes out as usual and the
connection is not read for the throttle time Kafka computes (RocketMQ has no throttle field): the client's
next requests wait in its socket, so a synchronous producer slows to the quota, and a request held longer
than the client's own timeout (the Java client's sendMsgTimeout, 3 s) times out there.
Leaves out: request_percentage on this port (handler time is not measured here).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from ferrymq.core.auth.quotas import FETCH, PRODUCE, ClientQuotas
from ferrymq.core.remoting.acl_sign import ACCESS_KEY
from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.remoting.transport import Handler

#: the connection attribute the heartbeat processor keeps the client's clientId in
CLIENT_ID_ATTR = "clientId"
ANONYMOUS = "ANONYMOUS"
SEND_CODES = frozenset(
    {RequestCode.SEND_MESSAGE, RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE}
)
PULL_CODES = frozenset({RequestCode.PULL_MESSAGE, RequestCode.LITE_PULL_MESSAGE})
CODES = SEND_CODES | PULL_CODES


class RemotingQuotas:
    def __init__(self, quotas: ClientQuotas, acl_enabled: bool) -> None:
        self.quotas = quotas
        self.acl_enabled = acl_enabled

    def handle(self, cmd: RemotingCommand, conn: RemotingConnection, dispatch: Handler) -> HandlerResult:
        """Run the request through ``dispatch``, counting it against the sender's quota (the broker calls
        this only for ``CODES`` while some quota is set)."""
        if cmd.code in SEND_CODES:
            if self.quotas.active(PRODUCE):
                self._count(cmd, conn, PRODUCE, len(cmd.body))
            return dispatch(cmd, conn)
        result = dispatch(cmd, conn)
        if not self.quotas.active(FETCH) or result is None:
            return result
        if isinstance(result, RemotingCommand):
            self._count(cmd, conn, FETCH, len(result.body))
            return result
        return self._pulled(cmd, conn, result)

    async def _pulled(
        self, cmd: RemotingCommand, conn: RemotingConnection, pending: Awaitable[RemotingCommand | None]
    ) -> RemotingCommand | None:
        response = await pending
        if response is not None:
            self._count(cmd, conn, FETCH, len(response.body))
        return response

    def _count(self, cmd: RemotingCommand, conn: RemotingConnection, kind: str, size: int) -> None:
        key = cmd.ext_fields.get(ACCESS_KEY) if self.acl_enabled else None
        user = key or ANONYMOUS  # the ACL check before this verified the key's signature
        client_id = conn.attrs.get(CLIENT_ID_ATTR, "")
        throttle = self.quotas.record(kind, user, client_id, size, int(time.monotonic() * 1000))
        if throttle > 0:
            conn.mute(throttle / 1000)
