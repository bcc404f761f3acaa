"""One Kafka request from this broker to another broker group's Kafka listener, for the transaction
coordinator: WriteTxnMarkers to a partition's leader, TxnOffsetCommit forwarded to a transactional
id's coordinator. A connection per call (these are rare: once per transaction and broker group).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from typing import Any

from kio.index import load_response_from_request

from ferrymq.gateway.kafka.cluster import Node
from ferrymq.gateway.kafka.framing import decode_response, encode_request

log = logging.getLogger("ferrymq.kafka.txn")

#: one round trip to another broker group
TIMEOUT_S = 5.0
#: the client id of TxnOffsetCommit requests a group coordinator forwards to the transactional id's
#: coordinator (which then skips the group checks the forwarder made)
FORWARD_CLIENT_ID = "ferrymq-txn-offsets-forward"

_corr = itertools.count(1)


async def call(node: Node, request: Any, client_id: str = "ferrymq-txn-coordinator") -> Any | None:
    """``request`` to ``node``; its response, or None (logged) if the node could not be reached."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reader, writer = await asyncio.open_connection(node.host, node.port)
            try:
                writer.write(encode_request(request, next(_corr), client_id))
                (size,) = struct.unpack(">i", await reader.readexactly(4))
                frame = await reader.readexactly(size)
            finally:
                writer.close()
        return decode_response(frame, load_response_from_request(type(request)))[1]
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        name = type(request).__name__
        log.warning("%s to node %d (%s:%d) failed: %s", name, node.node_id, node.host, node.port, exc)
        return None
