"""RocketMQ ACL 1.0 on the broker's remoting port (broker.conf ``aclEnable=true``).

Checks every request before its handler, in the order of RocketMQ 5.3.2's
``PlainPermissionManager.validate``: a peer in ``globalWhiteRemoteAddresses`` passes; otherwise
the request must carry an ``AccessKey`` of a plain_acl.yml account; a peer in that account's
``whiteRemoteAddress`` passes; otherwise the ``Signature`` must verify (core/remoting/acl_sign.py).
Then the resources the request code touches are authorized by core's Authorizer as principal
``User:<accessKey>`` (plain_acl.yml feeds it as source ``plain_acl``, core/auth/plain_acl.py,
so Kafka ACLs of the same user count too). Which code needs what is RocketMQ 5.3.2's
``PlainAccessResource.parse``:

- SEND_MESSAGE (10), SEND_MESSAGE_V2 (310), SEND_BATCH_MESSAGE (320): WRITE on the topic; to a
  ``%RETRY%<group>`` topic, READ on the group. Writes to RMQ_SYS_TRACE_TOPIC always pass.
- PULL_MESSAGE (11), LITE_PULL_MESSAGE (361), UPDATE/QUERY_CONSUMER_OFFSET (15/14): READ on the
  topic and on the group. QUERY_MESSAGE (12): READ on the topic.
- HEART_BEAT (34): READ on each consumer group and each topic it subscribes.
- CONSUMER_SEND_MSG_BACK (36), UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38): READ on
  the group. END_TRANSACTION (37): WRITE on its ``topic`` field when present (as ACL 2.0).
- The admin codes (17, 25, 200, 207, 215, 513, ACL 50-52, ACL 2.0's 3001-3010): ALTER on the
  cluster, which only super users (``admin: true``) and Kafka cluster ACLs grant.
- Any other code: the signature only.

Added beyond 5.3.2: LITE_PULL_MESSAGE, QUERY_CONSUMER_OFFSET and END_TRANSACTION are checked as
ACL 2.0 checks them; POP_MESSAGE, ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME as a pull (READ on
topic and group), SET_MESSAGE_REQUEST_MODE as an admin code (BATCH_ACK_MESSAGE: the signature only).
Every refusal is NO_PERMISSION (16) with RocketMQ's message as remark
("No permission for topic:T", "Check signature failed for accessKey=K", ...) — what a 5.3 ACL 2.0
broker answers (5.3.2's ACL 1.0 answered SYSTEM_ERROR with the exception text and a stack frame);
a oneway request is dropped. Each refusal is logged with its peer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from ferrymq.core.auth.acl import CLUSTER_NAME, Authorizer, Operation, ResourceType
from ferrymq.core.auth.plain_acl import apply_plain_acl
from ferrymq.core.broker.topic_config import RETRY_GROUP_TOPIC_PREFIX
from ferrymq.core.remoting.acl_sign import ACCESS_KEY, verify
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.heartbeat import HeartbeatData
from ferrymq.core.remoting.plain_acl import PlainAclFile, address_matches

log = logging.getLogger("ferrymq.acl")

TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
#: ``Permission.ADMIN_CODE``: topic and group admin, broker config, static topics, ACL config
#: ... and SET_MESSAGE_REQUEST_MODE (401), which changes how a group consumes
#: ... and ACL 2.0's user and ACL admin codes (3001-3010), so ACL 1.0 lets only admins near them
ADMIN_CODES = frozenset({17, 25, 200, 207, 215, 513, 50, 51, 52, 401, *range(3001, 3011)})

Need = tuple[ResourceType, str, Operation]


class AclRefused(Exception):
    """A request the ACL refuses; the message is the response's remark."""


class AclGuard(Protocol):
    """What ACL 1.0 (RemotingAcl) and ACL 2.0 (core/broker/remoting_acl2.py) both offer a listener
    whose requests are not remoting commands (the gRPC listener, gateway/grpc/acl.py): the same
    users, signatures and permissions as the remoting port, whichever version is on."""

    def authenticate(self, key: str | None, host: str, signed: Callable[[str], bool]) -> str | None:
        """The principal of a request from ``host`` by ``key`` (``signed(secret)`` checks its
        signature with the user's secret), None for a peer that needs no check; AclRefused if not."""
        ...

    def authorize_all(self, principal: str, host: str, wanted: Iterable[Need], what: str) -> None:
        """Raise AclRefused at the first resource of ``wanted`` that ``principal`` may not use."""
        ...


def topic_need(name: str | None, op: Operation) -> Iterator[Need]:
    if not name:
        return
    if name.startswith(RETRY_GROUP_TOPIC_PREFIX):  # a group's retry topic is the group
        yield (ResourceType.GROUP, name[len(RETRY_GROUP_TOPIC_PREFIX) :], Operation.READ)
    else:
        yield (ResourceType.TOPIC, name, op)


def group_need(name: str | None) -> Iterator[Need]:
    if name:
        yield (ResourceType.GROUP, name, Operation.READ)


def needs(cmd: RemotingCommand) -> Iterator[Need]:
    """What the request touches, as RocketMQ's PlainAccessResource.parse sees it."""
    ext, code = cmd.ext_fields, cmd.code
    if code == RequestCode.SEND_MESSAGE:
        yield from topic_need(ext.get("topic"), Operation.WRITE)
    elif code in (RequestCode.SEND_MESSAGE_V2, RequestCode.SEND_BATCH_MESSAGE):
        yield from topic_need(ext.get("b"), Operation.WRITE)
    elif code in (
        RequestCode.PULL_MESSAGE,
        RequestCode.LITE_PULL_MESSAGE,
        RequestCode.UPDATE_CONSUMER_OFFSET,
        RequestCode.QUERY_CONSUMER_OFFSET,
        RequestCode.POP_MESSAGE,
        RequestCode.ACK_MESSAGE,
        RequestCode.CHANGE_MESSAGE_INVISIBLETIME,
    ):
        yield from topic_need(ext.get("topic"), Operation.READ)
        yield from group_need(ext.get("consumerGroup"))
    elif code == RequestCode.QUERY_MESSAGE:
        yield from topic_need(ext.get("topic"), Operation.READ)
    elif code == RequestCode.CONSUMER_SEND_MSG_BACK:
        yield from group_need(ext.get("group"))
    elif code in (RequestCode.UNREGISTER_CLIENT, RequestCode.GET_CONSUMER_LIST_BY_GROUP):
        yield from group_need(ext.get("consumerGroup"))
    elif code == RequestCode.COMPACTED_PART and "topic" in ext:  # a slave copies message data
        yield from topic_need(ext.get("topic"), Operation.READ)
    elif code == RequestCode.END_TRANSACTION:
        yield from topic_need(ext.get("topic"), Operation.WRITE)
    elif code == RequestCode.HEART_BEAT:
        try:
            heartbeat = HeartbeatData.decode(cmd.body)
        except (ValueError, KeyError, TypeError) as exc:
            raise AclRefused(f"cannot read the heartbeat to check its groups: {exc}") from None
        for consumer in heartbeat.consumers:
            yield from group_need(consumer.group_name)
            for sub in consumer.subscriptions:
                yield from topic_need(sub.topic, Operation.READ)
    elif code in ADMIN_CODES:
        yield (ResourceType.CLUSTER, CLUSTER_NAME, Operation.ALTER)


def _describe(need: Need) -> str:
    kind = {ResourceType.TOPIC: "topic", ResourceType.GROUP: "group"}.get(need[0], "cluster")
    return f"{kind}:{need[1]}"


class RemotingAcl:
    """The broker's ACL check; ``check`` answers None (go on) or the refusal to send."""

    def __init__(self, acl_file: PlainAclFile, authorizer: Authorizer) -> None:
        self.file = acl_file
        self.authorizer = authorizer
        apply_plain_acl(authorizer, acl_file.acl)
        acl_file.listeners.append(lambda acl: apply_plain_acl(authorizer, acl))

    def check(self, cmd: RemotingCommand, peer: str) -> RemotingCommand | None:
        try:
            self.authorize(cmd, peer.rpartition(":")[0] or peer)
        except AclRefused as exc:
            log.warning("request code %s from %s refused: %s", cmd.code, peer, exc)
            return cmd.response(ResponseCode.NO_PERMISSION, str(exc))
        return None

    def authenticate(self, key: str | None, host: str, signed: Callable[[str], bool]) -> str | None:
        """The principal of a request from ``host`` signed by ``key`` (``signed`` checks the
        signature with the account's secret key), None for a white-listed peer; AclRefused otherwise.
        Shared by remoting and the gRPC listener: the same accounts and white lists."""
        acl = self.file.acl
        if acl.globally_white(host):
            return None
        if key is None:
            raise AclRefused("No accessKey is configured")
        account = acl.accounts.get(key)
        if account is None:
            raise AclRefused(f"No acl config for {key}")
        if address_matches(account.white_remote_address, host):
            return None
        if not signed(account.secret_key):
            raise AclRefused(f"Check signature failed for accessKey={key}")
        return account.principal

    def authorize(self, cmd: RemotingCommand, host: str) -> None:
        """Raise AclRefused unless the request may run (see the module docstring)."""
        principal = self.authenticate(
            cmd.ext_fields.get(ACCESS_KEY), host, lambda secret: verify(cmd, secret)
        )
        if principal is None:
            return
        self.authorize_all(principal, host, needs(cmd), f"request code={cmd.code}")

    def authorize_all(self, principal: str, host: str, wanted: Iterable[Need], what: str) -> None:
        authorize_needs(self.authorizer, principal, host, wanted, what)


def authorize_needs(
    authorizer: Authorizer, principal: str, host: str, wanted: Iterable[Need], what: str
) -> None:
    """Raise AclRefused at the first resource ``principal`` may not use; shared with the gRPC
    listener (gateway/grpc/acl.py), so one user has one set of permissions on both."""
    for need in wanted:
        resource_type, name, op = need
        if resource_type == ResourceType.TOPIC and name == TRACE_TOPIC and op == Operation.WRITE:
            continue
        if not authorizer.authorize(principal, host, op, resource_type, name):
            if resource_type == ResourceType.CLUSTER:
                user = principal.removeprefix("User:")
                raise AclRefused(f"Need admin permission for {what}, but accessKey={user} is not")
            raise AclRefused(f"No permission for {_describe(need)}")
