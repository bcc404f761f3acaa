"""HEART_BEAT (34), UNREGISTER_CLIENT (35) and CHECK_CLIENT_CONFIG (46).

A heartbeat registers the client's producer groups and consumer groups with their
subscriptions; a consumer group gets its retry topic %RETRY%<group> (as the Java broker's
``ClientManageProcessor.heartBeat`` creates it). Heartbeat v2 fingerprints are not used: every
heartbeat carries the full data.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ferrymq.core.broker.client_manager import ClientChannel
from ferrymq.core.broker.topic_config import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.heartbeat import ConsumerData, HeartbeatData
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.clients")


class ClientManageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def heartbeat(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            data = HeartbeatData.decode(cmd.body)
        except (ValueError, KeyError, TypeError) as exc:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"bad heartbeat body: {exc}")
        for group in data.producer_groups:
            channel = ClientChannel(data.client_id, conn, cmd.language, cmd.version)
            self.broker.clients.register_producer(group, channel)
        refused: list[str] = []
        for consumer in data.consumers:
            reason = self.broker.clients.consumer_group_refusal(consumer.group_name)
            if reason:
                log.warning("consumer %s from %s refused: %s", data.client_id, conn.peer, reason)
                refused.append(reason)
                continue
            self._consumer(consumer, data.client_id, cmd, conn)
        if refused:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "; ".join(refused))
        response = cmd.response(ResponseCode.SUCCESS)
        if self.broker.topics.unwritten:  # retry topics created: reply once they are on disk
            return self.broker.topics.reply_when_persisted(cmd, response)
        return response

    def _consumer(
        self, consumer: ConsumerData, client_id: str, cmd: RemotingCommand, conn: RemotingConnection
    ) -> None:
        group = consumer.group_name
        if consumer.message_model == "CLUSTERING":
            tc = self.broker.topics.create_if_absent(RETRY_GROUP_TOPIC_PREFIX + group, 1)
            self.broker.topic_created(tc)
        self.broker.clients.register_consumer(
            group,
            ClientChannel(client_id, conn, cmd.language, cmd.version),
            consumer.consume_type,
            consumer.message_model,
            consumer.consume_from_where,
            consumer.subscriptions,
        )

    def check_client_config(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        """Accepted as is: only TAG subscriptions exist here, so there is nothing to check."""
        return cmd.response(ResponseCode.SUCCESS)

    def unregister(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        if "clientID" not in ext:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "the custom field <clientID> is null")
        if ext.get("producerGroup"):
            self.broker.clients.unregister_producer(ext["producerGroup"], conn)
        if ext.get("consumerGroup"):
            self.broker.clients.unregister_consumer(ext["consumerGroup"], conn)
        return cmd.response(ResponseCode.SUCCESS)
