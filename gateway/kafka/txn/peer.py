"""One Kafka request from this broker to another broker group's Kafka listener, for the transaction
coordinator: WriteTxnMarkers to a partition's leader, TxnOffsetCommit forwarded to a transactional
id's coordinator. A connection per call (these are rare: once per transaction and broker group), logged in
as the inter-broker principal first when one is configured (inter_broker.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ferrymq.gateway.kafka.cluster import Node
from ferrymq.gateway.kafka.inter_broker import InterBrokerLogin, exchange, login

log = logging.getLogger("ferrymq.kafka.txn")

#: one round trip to another broker group
TIMEOUT_S = 5.0
#: the client id of TxnOffsetCommit requests a group coordinator forwards to the transactional id's
#: coordinator (which then skips the group checks the forwarder made)
FORWARD_CLIENT_ID = "ferrymq-txn-offsets-forward"


async def call(
    node: Node, request: Any, creds: InterBrokerLogin | None, client_id: str = "ferrymq-txn-coordinator"
) -> Any | None:
    """``request`` to ``node`` (as ``creds``' principal); its response, or None (logged) if the node could not
    be reached or refused the login."""
    try:
        async with asyncio.timeout(TIMEOUT_S):
            reader, writer = await asyncio.open_connection(node.host, node.port)
            try:
                if creds is not None:
                    await login(reader, writer, creds, client_id)
                return await exchange(reader, writer, request, client_id)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        name = type(request).__name__
        log.warning("%s to node %d (%s:%d) failed: %s", name, node.node_id, node.host, node.port, exc)
        return None
