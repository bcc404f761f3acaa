"""RocketMQ plain_acl.yml accounts as Authorizer bindings (source ``plain_acl``).

An account is the principal ``User:<accessKey>``, so the permissions it gets here are the ones
Kafka SASL (same user name) and the admin API see too. The translation keeps RocketMQ's meaning
under Kafka's rules (a DENY wins; otherwise any ALLOW): PUB is WRITE on the topic, SUB is READ on
the topic or group; ``admin: true`` makes the account a super user; defaultTopicPerm and
defaultGroupPerm become ALLOWs on ``*`` (a default of DENY is simply no ALLOW). A topic or group
the account names explicitly overrides its default in RocketMQ, so an operation the default
allows but the entry does not is an explicit DENY on that resource; ``=DENY`` denies everything.
A PUB on a group is dropped: no RocketMQ request asks for it. Host is ``*``: RocketMQ's address
white lists skip authentication, they do not restrict it (core/broker/remoting_acl.py).
"""

from __future__ import annotations

from collections.abc import Iterator

from ferrymq.core.auth.acl import (
    WILDCARD,
    AclBinding,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from ferrymq.core.remoting.plain_acl import Account, Perm, PlainAcl

SOURCE = "plain_acl"


def _ops(perm: Perm, resource_type: ResourceType) -> set[Operation]:
    if perm & Perm.DENY:
        return set()
    ops = {Operation.READ} if perm & Perm.SUB else set()
    if perm & Perm.PUB and resource_type == ResourceType.TOPIC:
        ops.add(Operation.WRITE)
    return ops


def _bindings_of(
    account: Account, resource_type: ResourceType, default: Perm, named: dict[str, Perm]
) -> Iterator[AclBinding]:
    def binding(name: str, op: Operation, permission: Permission) -> AclBinding:
        return AclBinding(
            resource_type, name, PatternType.LITERAL, account.principal, WILDCARD, op, permission
        )

    default_ops = _ops(default, resource_type)
    for op in sorted(default_ops):
        yield binding(WILDCARD, op, Permission.ALLOW)
    for name, perm in named.items():
        if perm & Perm.DENY:
            yield binding(name, Operation.ALL, Permission.DENY)
            continue
        ops = _ops(perm, resource_type)
        for op in sorted(ops):
            yield binding(name, op, Permission.ALLOW)
        for op in sorted(default_ops - ops):
            yield binding(name, op, Permission.DENY)


def plain_acl_bindings(acl: PlainAcl) -> list[AclBinding]:
    out: list[AclBinding] = []
    for account in acl.accounts.values():
        out += _bindings_of(account, ResourceType.TOPIC, account.default_topic_perm, account.topic_perms)
        out += _bindings_of(account, ResourceType.GROUP, account.default_group_perm, account.group_perms)
    return out


def apply_plain_acl(authorizer: Authorizer, acl: PlainAcl) -> None:
    """Replace what plain_acl.yml gave the authorizer with this version of the file."""
    authorizer.set_bindings(SOURCE, plain_acl_bindings(acl))
    authorizer.set_super_users(SOURCE, [a.principal for a in acl.accounts.values() if a.admin])
