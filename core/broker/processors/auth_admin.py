"""AUTH_CREATE_USER (3001) ... AUTH_LIST_ACL (3010): RocketMQ 5.3.3's ACL 2.0 admin codes over
core/auth/acl2_store.py, as ``AdminBrokerProcessor`` answers them (what mqadmin createUser, listUser,
createAcl, listAcl, deleteAcl ... send).

Headers: ``username`` (3001-3004), ``filter`` (3005), ``subject`` (3006-3009), 3008 adds ``policyType`` and
``resource``, 3010 ``subjectFilter`` and ``resourceFilter``. Bodies are UserInfo / AclInfo JSON; a get or
list of nothing is SUCCESS without a body. A refusal of the stores ("The user is existed", "The acl is not
exist.") is NO_PERMISSION with that text, as RocketMQ's ``handleAuthException``; a body that does not
parse is INVALID_PARAMETER. Only a Super user may create or change a Super user (SYSTEM_ERROR otherwise,
as RocketMQ). Who may call these is the ACL's business (core/broker/remoting_acl2.py: Super users only;
ACL 1.0: ``admin: true`` accounts). Unlike RocketMQ, a broker with no remoting ACL at all refuses them
(NO_PERMISSION): there anyone could make themselves a Super user, and Super users are Kafka super users
too. Left out: subjects other than ``User:``; a slave serves them on its own store.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ferrymq.core.auth.acl2 import SUPER, AuthError, User, parse_acl, parse_subject, parse_user
from ferrymq.core.remoting.acl_sign import ACCESS_KEY
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import loads_fastjson
from ferrymq.core.remoting.transport import Handler, HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.auth.acl2_store import Acl2Store
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.acl")


def _body(cmd: RemotingCommand) -> object:
    try:
        return loads_fastjson(bytes(cmd.body)) if cmd.body else None
    except ValueError as exc:
        raise AuthError(f"The body is not JSON: {exc}") from None


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


AUTH_CODES = frozenset(
    RequestCode(c) for c in range(RequestCode.AUTH_CREATE_USER, RequestCode.AUTH_LIST_ACL + 1)
)


class AuthAdminProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self._handlers: dict[int, Handler] = {
            RequestCode.AUTH_CREATE_USER: self.create_user,
            RequestCode.AUTH_UPDATE_USER: self.update_user,
            RequestCode.AUTH_DELETE_USER: self.delete_user,
            RequestCode.AUTH_GET_USER: self.get_user,
            RequestCode.AUTH_LIST_USER: self.list_users,
            RequestCode.AUTH_CREATE_ACL: self.put_acl,
            RequestCode.AUTH_UPDATE_ACL: self.put_acl,
            RequestCode.AUTH_DELETE_ACL: self.delete_acl,
            RequestCode.AUTH_GET_ACL: self.get_acl,
            RequestCode.AUTH_LIST_ACL: self.list_acls,
        }

    def handle(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        if self.broker.remoting_guard is None:
            log.warning("auth admin code %s from %s refused: no ACL on", cmd.code, conn.peer)
            return cmd.response(
                ResponseCode.NO_PERMISSION,
                "users and ACLs need authenticationEnabled, authorizationEnabled or aclEnable",
            )
        return self._handlers[cmd.code](cmd, conn)

    @property
    def store(self) -> Acl2Store:
        return self.broker.acl2_store

    def _is_super(self, cmd: RemotingCommand) -> bool:
        """RocketMQ's ``isNotSuperUserLogin`` negated: an unsigned request (ACL off) counts as super."""
        name = cmd.ext_fields.get(ACCESS_KEY)
        return not name or f"User:{name}" in self.broker.authorizer.super_users

    def _run(
        self, cmd: RemotingCommand, conn: RemotingConnection, what: str, action: Callable[[], object]
    ) -> RemotingCommand:
        """Run a change or query; its refusal becomes the response (logged with the peer)."""
        try:
            body = action()
        except AuthError as exc:
            log.info("%s from %s refused: %s", what, conn.peer, exc, extra={"peer": conn.peer})
            return cmd.response(ResponseCode.NO_PERMISSION, str(exc))
        if body is not None:
            return cmd.response(body=_json(body))
        return cmd.response(ResponseCode.SUCCESS)

    def _parsed_user(self, cmd: RemotingCommand, verb: str) -> RemotingCommand | User:
        name = cmd.ext_fields.get("username") or ""
        if not name.strip():
            return cmd.response(ResponseCode.INVALID_PARAMETER, "The username is blank")
        try:
            user = parse_user(
                _body(cmd) or {}, name, self.store.users.get(name) if verb == "update" else None
            )
        except AuthError as exc:
            return cmd.response(ResponseCode.INVALID_PARAMETER, str(exc))
        old = self.store.users.get(name)
        if (user.user_type == SUPER or (old and old.user_type == SUPER)) and not self._is_super(cmd):
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"The super user can only be {verb} by super user")
        return user

    def create_user(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        user = self._parsed_user(cmd, "create")
        if isinstance(user, RemotingCommand):
            return user
        log.info("ACL 2.0 user %s created by %s", user.username, conn.peer, extra={"peer": conn.peer})
        return self._run(cmd, conn, "create user", lambda: self.store.create_user(user))

    def update_user(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        user = self._parsed_user(cmd, "update")
        if isinstance(user, RemotingCommand):
            return user
        return self._run(cmd, conn, "update user", lambda: self.store.update_user(user))

    def delete_user(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        name = cmd.ext_fields.get("username") or ""
        old = self.store.users.get(name)
        if old is not None and old.user_type == SUPER and not self._is_super(cmd):
            return cmd.response(ResponseCode.NO_PERMISSION, "The super user can only be update by super user")
        return self._run(cmd, conn, "delete user", lambda: self.store.delete_user(name))

    def get_user(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        name = cmd.ext_fields.get("username") or ""
        if not name.strip():
            return cmd.response(ResponseCode.INVALID_PARAMETER, "The username is blank")
        user = self.store.users.get(name)
        return self._run(cmd, conn, "get user", lambda: user.to_json() if user else None)

    def list_users(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        users = self.store.list_users(cmd.ext_fields.get("filter"))
        return self._run(cmd, conn, "list users", lambda: [u.to_json() for u in users] or None)

    def put_acl(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        """AUTH_CREATE_ACL and AUTH_UPDATE_ACL: both merge the policies into the subject's ACL."""
        try:
            acl = parse_acl(_body(cmd), cmd.ext_fields.get("subject"))
        except AuthError as exc:
            return cmd.response(ResponseCode.INVALID_PARAMETER, str(exc))
        log.info("ACL 2.0 policies of %s set by %s", acl.subject, conn.peer, extra={"peer": conn.peer})
        return self._run(cmd, conn, "put acl", lambda: self.store.put_acl(acl))

    def delete_acl(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields

        def delete() -> None:
            self.store.delete_acl(
                parse_subject(ext.get("subject")), ext.get("policyType"), ext.get("resource")
            )

        return self._run(cmd, conn, "delete acl", delete)

    def get_acl(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        acl = self.store.acls.get(cmd.ext_fields.get("subject") or "")
        return self._run(cmd, conn, "get acl", lambda: acl.to_json() if acl else None)

    def list_acls(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        ext = cmd.ext_fields
        acls = self.store.list_acls(ext.get("subjectFilter"), ext.get("resourceFilter"))
        return self._run(cmd, conn, "list acls", lambda: [a.to_json() for a in acls] or None)
