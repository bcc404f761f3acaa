"""RocketMQ ACL 2.0 on the broker's remoting port (broker.conf ``authenticationEnabled`` /
``authorizationEnabled``), as RocketMQ 5.3.3's AuthenticationPipeline and AuthorizationPipeline check
every request before its handler.

Authentication (``authenticationEnabled``): the request's ``AccessKey`` is a user name; the user must
exist and be enabled, and the ``Signature`` must be the ACL 1.0 one (core/remoting/acl_sign.py) keyed
with the user's password. With ``aclEnable`` on too, a plain_acl.yml account that is no ACL 2.0 user
authenticates with its secret key (as RocketMQ's ``migrateAuthFromV1Enabled`` would make it a user).

Authorization (``authorizationEnabled``): principal ``User:<AccessKey>``; Super users skip the
policies; otherwise each resource the request touches (DefaultAuthorizationContextBuilder's mapping:
core/broker/remoting_acl.py ``needs``; with ACL 2.0 UPDATE_AND_CREATE_TOPIC (17) is Create and
DELETE_TOPIC_IN_BROKER (215) Delete on the topic rather than the cluster) is checked by the broker's
one Authorizer, so ACL 2.0 policies, Kafka ACLs and plain_acl.yml accounts of the user all count.
The user and ACL admin codes 3001-3010 need a Super user whenever either switch is on.

Every refusal is NO_PERMISSION (16) with RocketMQ's remark ("User:bob is not found.", "check signature
failed.", "User:bob has no permission to access Topic:T from 10.0.0.1, no matched policies."), logged
with its peer; no exception text. Left out: authentication and authorization whitelists, the stateful
strategies (each request is checked). ``registrar`` lends the users to the name server of ``ferrymq
serve`` (namesrv/acl.py); the gRPC listener checks through ``authenticate`` and ``authorize_all``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from ferrymq.core.auth.acl import CLUSTER_NAME, Authorizer, Operation, ResourceType
from ferrymq.core.auth.acl2_store import Acl2Store
from ferrymq.core.broker.processors.auth_admin import AUTH_CODES
from ferrymq.core.broker.remoting_acl import TRACE_TOPIC, AclRefused, Need, needs
from ferrymq.core.remoting.acl_sign import ACCESS_KEY, verify
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.plain_acl import PlainAclFile

log = logging.getLogger("ferrymq.acl")

_KINDS = {ResourceType.TOPIC: "Topic", ResourceType.GROUP: "Group", ResourceType.CLUSTER: "Cluster"}


def needs_v2(cmd: RemotingCommand) -> Iterator[Need]:
    """What the request needs under ACL 2.0 (the ACL 1.0 mapping with 5.3's topic admin actions)."""
    if cmd.code == RequestCode.UPDATE_AND_CREATE_TOPIC:
        yield (ResourceType.TOPIC, cmd.ext_fields.get("topic") or "", Operation.CREATE)
    elif cmd.code == RequestCode.DELETE_TOPIC_IN_BROKER:
        yield (ResourceType.TOPIC, cmd.ext_fields.get("topic") or "", Operation.DELETE)
    else:
        yield from needs(cmd)


class RemotingAcl2:
    """The broker's ACL 2.0 check; ``check`` answers None (go on) or the refusal to send."""

    def __init__(
        self,
        store: Acl2Store,
        authorizer: Authorizer,
        authentication: bool,
        authorization: bool,
        plain: PlainAclFile | None = None,
    ) -> None:
        self.store = store
        self.authorizer = authorizer
        self.authentication = authentication
        self.authorization = authorization
        self.plain = plain

    def check(self, cmd: RemotingCommand, peer: str) -> RemotingCommand | None:
        try:
            self.authorize(cmd, peer.rpartition(":")[0] or peer)
        except AclRefused as exc:
            log.warning("request code %s from %s refused: %s", cmd.code, peer, exc, extra={"peer": peer})
            return cmd.response(ResponseCode.NO_PERMISSION, str(exc))
        return None

    def _secret(self, name: str) -> str:
        user = self.store.users.get(name)
        if user is not None:
            if not user.enabled:
                raise AclRefused(f"User:{name} is disabled.")
            return user.password
        account = self.plain.acl.accounts.get(name) if self.plain is not None else None
        if account is None:
            raise AclRefused(f"User:{name} is not found.")
        return account.secret_key

    def authenticate(self, key: str | None, host: str, signed: Callable[[str], bool]) -> str:
        """The principal ``User:<key>``; with ``authenticationEnabled`` the user must exist, be
        enabled and have signed with its password (``signed(password)``). Shared with the gRPC
        listener (gateway/grpc/acl.py)."""
        if not key:
            raise AclRefused("username cannot be null.")
        if self.authentication and not signed(self._secret(key)):
            raise AclRefused("check signature failed.")
        return f"User:{key}"

    def registrar(self, name: str, host: str) -> tuple[str, bool] | str:
        """For the name server of ``ferrymq serve`` (namesrv/acl.py ``Registrars``): the user's
        password and whether it may administer the cluster (register brokers), or why not."""
        try:
            secret = self._secret(name)
        except AclRefused as exc:
            return str(exc)
        return secret, self.authorizer.authorize(
            f"User:{name}", host, Operation.ALTER, ResourceType.CLUSTER, CLUSTER_NAME
        )

    def authorize_all(self, principal: str, host: str, wanted: Iterable[Need], what: str) -> None:
        """With ``authorizationEnabled``, raise AclRefused at the first resource of ``wanted`` the
        principal may not use (``what`` names the request for ACL 1.0 only)."""
        if not self.authorization:
            return
        for resource_type, resource, op in wanted:
            if resource_type == ResourceType.TOPIC and resource == TRACE_TOPIC and op == Operation.WRITE:
                continue
            if not self.authorizer.authorize(principal, host, op, resource_type, resource):
                raise AclRefused(self._denied(principal, f"{_KINDS[resource_type]}:{resource}", host))

    def authorize(self, cmd: RemotingCommand, host: str) -> None:
        """Raise AclRefused unless the request may run (see the module docstring)."""
        principal = self.authenticate(
            cmd.ext_fields.get(ACCESS_KEY), host, lambda secret: verify(cmd, secret)
        )
        if cmd.code in AUTH_CODES:
            if principal not in self.authorizer.super_users:
                raise AclRefused(self._denied(principal, f"Cluster:{CLUSTER_NAME}", host))
            return
        self.authorize_all(principal, host, needs_v2(cmd), f"request code={cmd.code}")

    @staticmethod
    def _denied(principal: str, resource: str, host: str) -> str:
        return f"{principal} has no permission to access {resource} from {host}, no matched policies."
