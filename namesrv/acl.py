"""The name server's ACL: who may register and unregister brokers (REGISTER_BROKER 103, UNREGISTER 104)
and, on a name server running the controller, change what it knows of a group (BROKER_HEARTBEAT 904,
CONTROLLER_ALTER_SYNC_STATE_SET 1001, CONTROLLER_ELECT_MASTER 1002, CONTROLLER_REGISTER_BROKER 1003).

RocketMQ's name server checks nothing; ferrymq's, given a plain_acl.yml (``ferrymq namesrv
--acl-file``, or ``aclEnable`` in the broker.conf of ``ferrymq serve``), refuses a registration
unless it comes from a ``globalWhiteRemoteAddresses`` peer or is signed (core/remoting/acl_sign.py)
by an ``admin: true`` account — the accessKey/secretKey in the broker's broker.conf. Refusals are
NO_PERMISSION (16) with the reason as remark, logged with the peer. Route queries stay open, as
clients of every RocketMQ version send them unsigned to name servers, and so do the controller's
queries (metadata, replica info). A broker signs all of these (core/remoting/outbound.py).

With RocketMQ ACL 2.0 (``authenticationEnabled`` in the broker.conf of ``ferrymq serve``) the same
requests must instead be signed by an enabled ACL 2.0 user that may administer the cluster (a Super
user, or a plain_acl.yml ``admin: true`` account when ``aclEnable`` is on too), with the user's password
as key, as the broker's ``innerClientAuthenticationCredentials`` sign them. The users are the broker's
(core/broker/remoting_acl2.py ``registrar``), handed in as a plain function so that this module needs
nothing of core beyond core/remoting. Refusals carry ACL 2.0's remarks. Apache's name server checks
neither version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ferrymq.core.remoting.acl_sign import ACCESS_KEY, verify
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.plain_acl import PlainAclFile

log = logging.getLogger("ferrymq.namesrv")

GUARDED = frozenset(
    {
        RequestCode.REGISTER_BROKER,
        RequestCode.UNREGISTER_BROKER,
        RequestCode.BROKER_HEARTBEAT,
        RequestCode.CONTROLLER_ALTER_SYNC_STATE_SET,
        RequestCode.CONTROLLER_ELECT_MASTER,
        RequestCode.CONTROLLER_REGISTER_BROKER,
    }
)


#: ACL 2.0: (user name, peer host) -> (password, may register brokers), or why the user may not sign
Registrars = Callable[[str, str], tuple[str, bool] | str]


def _host(peer: str) -> str:
    return peer.rpartition(":")[0] or peer


def _refuse(cmd: RemotingCommand, peer: str, reason: str) -> RemotingCommand:
    log.warning("broker request code %s from %s refused: %s", cmd.code, peer, reason, extra={"peer": peer})
    return cmd.response(ResponseCode.NO_PERMISSION, reason)


def user_refusal(registrars: Registrars, cmd: RemotingCommand, peer: str) -> RemotingCommand | None:
    """ACL 2.0: None if the request may go on, else the NO_PERMISSION response."""
    if cmd.code not in GUARDED:
        return None
    key, host = cmd.ext_fields.get(ACCESS_KEY), _host(peer)
    if not key:
        return _refuse(cmd, peer, "username cannot be null.")
    found = registrars(key, host)
    if isinstance(found, str):
        return _refuse(cmd, peer, found)
    secret, may_register = found
    if not verify(cmd, secret):
        return _refuse(cmd, peer, "check signature failed.")
    if not may_register:
        cluster = cmd.ext_fields.get("clusterName") or ""
        reason = f"User:{key} has no permission to access Cluster:{cluster} from {host}, no matched policies."
        return _refuse(cmd, peer, reason)
    return None


def refusal(acl_file: PlainAclFile, cmd: RemotingCommand, peer: str) -> RemotingCommand | None:
    """None if the request may go on, else the NO_PERMISSION response."""
    if cmd.code not in GUARDED:
        return None
    acl = acl_file.acl
    if acl.globally_white(_host(peer)):
        return None
    key = cmd.ext_fields.get(ACCESS_KEY)
    account = acl.accounts.get(key) if key is not None else None
    if key is None:
        reason = "No accessKey is configured"
    elif account is None:
        reason = f"No acl config for {key}"
    elif not verify(cmd, account.secret_key):
        reason = f"Check signature failed for accessKey={key}"
    elif not account.admin:
        reason = f"Need admin permission for request code={cmd.code}, but accessKey={key} is not"
    else:
        return None
    return _refuse(cmd, peer, reason)
