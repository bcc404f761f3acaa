"""One Kafka request from this broker to another broker group's Kafka listener, for the transaction
coordinator: WriteTxnMarkers to a partition's leader, TxnOffsetCommit forwarded to a transactional
id's coordinator. A connection per call (these are rare: once per transaction and broker group) to the
other broker's inter-broker listener, in its protocol: over TLS on SSL and SASL_SSL, logged in as the
inter-broker principal first on SASL ones (inter_broker.py). A broker that registered no listener list (an
older one) is called on its Kafka address over plain TCP, logged in when a user is configured.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ferrymq.gateway.kafka.cluster import Node
from ferrymq.gateway.kafka.inter_broker import InterBrokerLink, exchange, login

log = logging.getLogger("ferrymq.kafka.txn")

#: one round trip to another broker group
TIMEOUT_S = 5.0
#: the client id of TxnOffsetCommit requests a group coordinator forwards to the transactional id's
#: coordinator (which then skips the group checks the forwarder made)
FORWARD_CLIENT_ID = "ferrymq-txn-offsets-forward"


async def call(
    node: Node, request: Any, link: InterBrokerLink, client_id: str = "ferrymq-txn-coordinator"
) -> Any | None:
    """``request`` to ``node``'s inter-broker listener (as ``link`` says); its response, or None (logged) if
    the node has no such listener, could not be reached or refused the login."""
    name = type(request).__name__
    host, port, tls, sasl = node.host, node.port, False, link.login is not None
    if node.listeners:
        listener = link.endpoint(node.listeners)
        if listener is None:
            log.warning("%s to node %d failed: it has no %s listener", name, node.node_id, link.listener)
            return None
        host, port, tls, sasl = listener.host, listener.port, listener.tls, listener.sasl
    try:
        async with asyncio.timeout(TIMEOUT_S):
            if tls and link.ssl_context is None:
                raise OSError(
                    "a TLS listener, and this broker has no SSL Kafka listener to take TLS settings from"
                )
            context = link.ssl_context if tls else None
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
            try:
                if sasl and link.login is not None:
                    await login(reader, writer, link.login, client_id)
                return await exchange(reader, writer, request, client_id)
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        log.warning("%s to node %d (%s:%d) failed: %s", name, node.node_id, host, port, exc)
        return None
