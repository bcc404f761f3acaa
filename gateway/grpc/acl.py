"""ACL on the gRPC listener: the 5.x SDKs' signed calls checked by whichever RocketMQ ACL the broker
has on, through ``broker.remoting_guard`` (core/broker/remoting_acl.py ``AclGuard``): ACL 2.0
(``authenticationEnabled`` / ``authorizationEnabled``, core/broker/remoting_acl2.py: the users and
policies of codes 3001-3010) as Apache's proxy checks gRPC, else ACL 1.0 (``aclEnable=true``: the
plain_acl.yml accounts). The same users, signatures and permissions as the remoting port.

Serves every MessagingService call. The SDKs sign each call in its metadata, as the Java client's
``Signature`` and the Python client's ``signature.py`` do: ``authorization: MQv2-HMAC-SHA1
Credential=<accessKey>, SignedHeaders=x-mq-date-time, Signature=<hex>``, the hex HmacSHA1 of the
``x-mq-date-time`` value keyed with the secret key (ACL 2.0: the user's password); checked as
RocketMQ 5.3's ``DefaultAuthenticationContextBuilder`` reads it (the Credential's part before any
``/`` is the user). ACL 1.0 only: a peer in ``globalWhiteRemoteAddresses`` or the account's
``whiteRemoteAddress`` needs no signature, as on remoting. The resources are the proxy's
``DefaultAuthorizationContextBuilder``'s, as principal ``User:<accessKey>`` (ACL 2.0's Pub is WRITE,
Sub is READ): SendMessage, EndTransaction, RecallMessage: WRITE on the topic; QueryRoute: WRITE or
READ on the topic; ReceiveMessage, AckMessage, ForwardMessageToDeadLetterQueue, QueryAssignment,
PullMessage, UpdateOffset, GetOffset: READ on the topic and the group; ChangeInvisibleDuration, a
consumer's Heartbeat, NotifyClientTermination with a group: READ on the group; QueryOffset: READ on
the topic; a Telemetry Settings command: WRITE on each topic it publishes, READ on its group and each
topic it subscribes. Any other call: the signature only.

Every refusal is the status UNAUTHORIZED (40100) with the reason as message, what the proxy's
``ResponseBuilder`` answers for both authentication and authorization failures (ACL 2.0's messages:
"check signature failed.", "User:bob is disabled.", "User:bob has no permission to access Topic:T
from 10.0.0.1, no matched policies."); it is logged with the peer. The datetime is not checked for
freshness (nor does the proxy): only TLS keeps a captured signature from being replayed.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator, Sequence
from hashlib import sha1
from typing import Any

from ferrymq.core.auth.acl import Operation
from ferrymq.core.broker.remoting_acl import AclGuard, AclRefused, Need, group_need, topic_need

log = logging.getLogger("ferrymq.acl")

AUTHORIZATION = "authorization"
DATE_TIME = "x-mq-date-time"
#: ClientType values of consumers (definition.proto): PUSH, SIMPLE, PULL, LITE_PUSH
CONSUMER_TYPES = frozenset({2, 3, 4, 5})


def parse_authorization(value: str) -> tuple[str, str]:
    """(access key, hex signature) of an ``authorization`` value; AclRefused if it has neither."""
    _, sep, rest = value.partition(" ")
    if not sep:
        raise AclRefused("authentication header is incorrect")
    key = signature = ""
    for item in rest.split(","):
        name, eq, text = item.strip().partition("=")
        if not eq:
            raise AclRefused("authentication header is incorrect")
        if name == "Credential":
            key = text.split("/")[0]
        elif name == "Signature":
            signature = text
    if not key:
        raise AclRefused("No accessKey is configured")
    return key, signature


def signature_matches(signature_hex: str, date_time: str, secret_key: str) -> bool:
    """Whether ``signature_hex`` is the HmacSHA1 of ``date_time`` under ``secret_key`` (constant time)."""
    try:
        given = bytes.fromhex(signature_hex)
    except ValueError:
        return False
    expected = hmac.new(secret_key.encode(), date_time.encode(), sha1).digest()
    return hmac.compare_digest(expected, given)


def _both(group: Any, topic: Any) -> Iterator[Need]:
    yield from group_need(group.name)
    yield from topic_need(topic.name, Operation.READ)


def _settings_needs(settings: Any) -> Iterator[Need]:
    if settings.HasField("publishing"):
        for topic in settings.publishing.topics:
            yield from topic_need(topic.name, Operation.WRITE)
    if settings.HasField("subscription"):
        yield from group_need(settings.subscription.group.name)
        for entry in settings.subscription.subscriptions:
            yield from topic_need(entry.topic.name, Operation.READ)


def needs(method: str, request: Any) -> list[Need]:
    """What a call touches (sans-IO), as the proxy's DefaultAuthorizationContextBuilder sees it."""
    if method == "SendMessage":
        if not request.messages:
            raise AclRefused("message is null")
        return list(topic_need(request.messages[0].topic.name, Operation.WRITE))
    if method in ("EndTransaction", "RecallMessage"):
        return list(topic_need(request.topic.name, Operation.WRITE))
    if method in ("ReceiveMessage", "PullMessage", "UpdateOffset", "GetOffset"):
        return list(_both(request.group, request.message_queue.topic))
    if method in ("AckMessage", "ForwardMessageToDeadLetterQueue", "QueryAssignment"):
        return list(_both(request.group, request.topic))
    if method == "QueryOffset":
        return list(topic_need(request.message_queue.topic.name, Operation.READ))
    if method == "ChangeInvisibleDuration" or method == "NotifyClientTermination":
        return list(group_need(request.group.name))
    if method == "Heartbeat":
        return list(group_need(request.group.name)) if request.client_type in CONSUMER_TYPES else []
    if method == "Telemetry":
        return list(_settings_needs(request.settings)) if request.HasField("settings") else []
    return []


class GrpcAcl:
    """The listener's check over the broker's ACL (1.0 or 2.0): ``refusal`` answers None or the reason."""

    def __init__(self, guard: AclGuard) -> None:
        self.guard = guard

    def principal(self, metadata: Sequence[tuple[str, Any]], host: str) -> str | None:
        """The signed caller (None: a white-listed peer); AclRefused if the signature is not good."""
        values = {k: v for k, v in metadata if k in (AUTHORIZATION, DATE_TIME)}
        authorization, date_time = values.get(AUTHORIZATION), values.get(DATE_TIME)
        key = signature = None
        if authorization:
            if not date_time:
                raise AclRefused("datetime is null")
            key, signature = parse_authorization(str(authorization))

        def signed(secret: str) -> bool:
            return signature_matches(signature or "", str(date_time), secret)

        return self.guard.authenticate(key, host, signed)

    def refusal(
        self, method: str, request: Any, metadata: Sequence[tuple[str, Any]], peer: str
    ) -> str | None:
        """None if the call may run, else why not (logged with ``peer``)."""
        host = peer.rpartition(":")[0] or peer
        try:
            principal = self.principal(metadata, host)
            if principal is not None:
                self._authorize(method, request, principal, host)
        except AclRefused as exc:
            log.warning("gRPC %s from %s refused: %s", method, peer, exc, extra={"peer": peer})
            return str(exc)
        return None

    def _authorize(self, method: str, request: Any, principal: str, host: str) -> None:
        check, what = self.guard.authorize_all, f"gRPC {method}"
        if method == "QueryRoute":  # a producer or a consumer may ask: PUB or SUB
            topic = request.topic.name
            try:
                check(principal, host, topic_need(topic, Operation.WRITE), what)
            except AclRefused:
                check(principal, host, topic_need(topic, Operation.READ), what)
            return
        check(principal, host, needs(method, request), what)
