"""The one way a broker opens its own remoting connections: to name servers (registration, routes),
to the controller, to its master (epoch query, HA hello, metadata sync, confirm-follow) and to the
owners of other partitions (Kafka group offsets).

As RocketMQ's broker-side ``NettyRemotingClient`` with its RPC hook: every connection uses the
client TLS context when ``tls.enable`` is on (``tls.client.trustCertPath``, and
``tls.client.certPath``/``keyPath`` for mutual TLS; core/remoting/tls.py), and every request sent
on it is signed with the broker's ``accessKey``/``secretKey`` when they are set (the Java broker's
``AclClientRPCHook``; core/remoting/acl_sign.py), so a peer with TLS enforcing and ACL on takes
them. Callers never sign or pick a context themselves.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ferrymq.core.remoting.acl_sign import sign
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import Handler, RemotingConnection, connect, split_addr


@dataclass(frozen=True, slots=True)
class Outbound:
    """TLS and signing for a process's own remoting connections; the default does neither."""

    ssl_context: ssl.SSLContext | None = None
    access_key: str | None = None
    secret_key: str | None = None

    @property
    def signs(self) -> bool:
        return bool(self.access_key and self.secret_key)

    async def connect(
        self,
        addr: str,
        handler: Handler | None = None,
        *,
        timeout: float = 3.0,
        on_close: Callable[[RemotingConnection], None] | None = None,
    ) -> RemotingConnection:
        """A connection to ``addr`` (host:port) whose requests are signed as configured."""
        host, port = split_addr(addr)
        ctx = self.ssl_context
        conn = await connect(host, port, handler, timeout=timeout, on_close=on_close, ssl_context=ctx)
        if self.access_key and self.secret_key:
            conn.request_hook = partial(_sign, access_key=self.access_key, secret_key=self.secret_key)
        return conn


def _sign(cmd: RemotingCommand, *, access_key: str, secret_key: str) -> None:
    sign(cmd, access_key, secret_key)
