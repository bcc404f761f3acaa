"""Admin mutations go through the broker's own request processors (the same checks a remoting
client gets), by handing them a request as if it came over a connection from the HTTP peer.

Reads need no such detour: they look at the Broker's managers and store directly.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.transport import RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


def detached_connection(peer: str) -> RemotingConnection:
    """A connection object with no socket: replies are returned, never written; ``peer`` is the
    HTTP client's address, so it is what gets logged and recorded as the born host."""
    conn = RemotingConnection(None)
    conn.peer = peer
    return conn


async def call_broker(broker: Broker, cmd: RemotingCommand, peer: str) -> RemotingCommand:
    """Run ``cmd`` through the broker's dispatcher and return its response."""
    result = broker.dispatcher(cmd, detached_connection(peer))
    if inspect.isawaitable(result):
        result = await result
    if result is None:  # a processor that answers nothing (oneway): treat as success
        return cmd.response()
    return result
