"""HEART_BEAT (34), UNREGISTER_CLIENT (35) and CHECK_CLIENT_CONFIG (46).

A heartbeat registers the client's producer groups and consumer groups with their
subscriptions; a consumer group gets its retry topic %RETRY%<group> (as the Java broker's
``ClientManageProcessor.heartBeat`` creates it). Heartbeat v2 fingerprints are not used: every
heartbeat carries the full data.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from ferrymq.core.broker.client_manager import ClientChannel
from ferrymq.core.broker.subscription import SubscriptionData
from ferrymq.core.broker.topic_config import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import BadRequest
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection, RequestDispatcher

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.clients")


class ClientManageProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def register(self, d: RequestDispatcher) -> None:
        d.register(RequestCode.HEART_BEAT, self.heartbeat)
        d.register(RequestCode.UNREGISTER_CLIENT, self.unregister)
        d.register(RequestCode.CHECK_CLIENT_CONFIG, lambda cmd, conn: cmd.response(ResponseCode.SUCCESS))

    def heartbeat(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        try:
            data = json.loads(bytes(cmd.body) or b"{}")
            if not isinstance(data, dict):
                raise ValueError("not an object")
            client_id = str(data.get("clientID") or "")
            if not client_id:
                raise ValueError("clientID missing")
            for producer in data.get("producerDataSet") or []:
                channel = ClientChannel(client_id, conn, cmd.language, cmd.version)
                self.broker.clients.register_producer(str(producer["groupName"]), channel)
            refused: list[str] = []
            for consumer in data.get("consumerDataSet") or []:
                reason = self.broker.clients.consumer_group_refusal(str(consumer["groupName"]))
                if reason:
                    log.warning("consumer %s from %s refused: %s", client_id, conn.peer, reason)
                    refused.append(reason)
                    continue
                self._consumer(consumer, client_id, cmd, conn)
        except BadRequest as exc:
            return exc.response(cmd)
        except (ValueError, KeyError, TypeError) as exc:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"bad heartbeat body: {exc}")
        if refused:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "; ".join(refused))
        return cmd.response(ResponseCode.SUCCESS)

    def _consumer(
        self, consumer: dict[str, Any], client_id: str, cmd: RemotingCommand, conn: RemotingConnection
    ) -> None:
        group = str(consumer["groupName"])
        subs = [SubscriptionData.from_json(s) for s in consumer.get("subscriptionDataSet") or []]
        model = str(consumer.get("messageModel") or "CLUSTERING")
        if model == "CLUSTERING":
            tc = self.broker.topics.create_if_absent(RETRY_GROUP_TOPIC_PREFIX + group, 1)
            self.broker.topic_created(tc)
        self.broker.clients.register_consumer(
            group,
            ClientChannel(client_id, conn, cmd.language, cmd.version),
            str(consumer.get("consumeType") or "CONSUME_PASSIVELY"),
            model,
            str(consumer.get("consumeFromWhere") or "CONSUME_FROM_LAST_OFFSET"),
            subs,
        )

    def unregister(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        if "clientID" not in ext:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "the custom field <clientID> is null")
        if ext.get("producerGroup"):
            self.broker.clients.unregister_producer(ext["producerGroup"], conn)
        if ext.get("consumerGroup"):
            self.broker.clients.unregister_consumer(ext["consumerGroup"], conn)
        return cmd.response(ResponseCode.SUCCESS)
