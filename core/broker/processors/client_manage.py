"""HEART_BEAT (34), UNREGISTER_CLIENT (35) and CHECK_CLIENT_CONFIG (46).

A heartbeat registers the client's producer groups and consumer groups with their
subscriptions; a consumer group gets its retry topic %RETRY%<group> (as the Java broker's
``ClientManageProcessor.heartBeat`` creates it). Heartbeat v2 fingerprints are not used: every
heartbeat carries the full data. CHECK_CLIENT_CONFIG (sent by a push consumer's ``start()`` for
each SQL92 subscription) compiles the expression: SUBSCRIPTION_PARSE_FAILED with the parser's
message, or SYSTEM_ERROR when enablePropertyFilter is off, as the Java broker answers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson

from ferrymq.core.broker import property_filter
from ferrymq.core.broker.client_manager import ClientChannel
from ferrymq.core.broker.remoting_quotas import CLIENT_ID_ATTR
from ferrymq.core.broker.topic_config import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.heartbeat import ConsumerData, HeartbeatData
from ferrymq.core.remoting.subscription import SubscriptionData
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
        conn.attrs[CLIENT_ID_ATTR] = data.client_id  # who this connection is, for client quotas
        for group in data.producer_groups:
            channel = ClientChannel(data.client_id, conn, cmd.language, cmd.version)
            self.broker.clients.register_producer(group, channel)
        refused: list[str] = []
        for consumer in data.consumers:
            reason = self.broker.clients.consumer_group_refusal(consumer.group_name)
            if reason:
                log.warning(
                    "consumer %s from %s refused: %s",
                    data.client_id,
                    conn.peer,
                    reason,
                    extra={"peer": conn.peer, "group": consumer.group_name, "code": cmd.code},
                )
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
        for sub in consumer.subscriptions:
            error = None if sub.is_tag_type else property_filter.check(sub)
            if error:  # registered all the same: its pulls get FILTER_DATA_NOT_EXIST
                log.warning("consumer %s of %s from %s: %r does not compile: %s",
                            client_id, group, conn.peer, sub.sub_string, error,
                            extra={"peer": conn.peer, "group": group, "topic": sub.topic})  # fmt: skip
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
        """``CheckClientRequestBody {clientId, group, subscriptionData}``: TAG passes, SQL92 must
        compile (and the broker must filter by properties at all)."""
        try:
            body = orjson.loads(bytes(cmd.body) or b"{}")
            data = body.get("subscriptionData") if isinstance(body, dict) else None
            sub = SubscriptionData.from_json(data) if isinstance(data, dict) else None
        except (ValueError, TypeError) as exc:
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"bad CHECK_CLIENT_CONFIG body: {exc}")
        if sub is None or sub.is_tag_type:
            return cmd.response(ResponseCode.SUCCESS)
        remark = property_filter.refusal(sub.expression_type, self.broker.config.enable_property_filter)
        if remark:
            return cmd.response(ResponseCode.SYSTEM_ERROR, remark)
        error = property_filter.check(sub)
        if error:
            log.warning(
                "client %s@%s from %s: expression %r does not compile: %s",
                body.get("clientId"), body.get("group"), conn.peer, sub.sub_string, error,
            )  # fmt: skip
            return cmd.response(ResponseCode.SUBSCRIPTION_PARSE_FAILED, error)
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
