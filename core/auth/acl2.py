"""RocketMQ 5.3 ACL 2.0 users and ACLs, and their policies as Authorizer bindings (source ``acl2``).

The model is RocketMQ 5.3.3's (``auth/.../model``, the ``UserInfo``/``AclInfo`` JSON of the admin codes
3001-3010): a user {username, password, userType Super|Normal, userStatus enable|disable}; an ACL
{subject ``User:<name>``, policies [{policyType Custom|Default, entries [{resource, actions, sourceIps,
decision Allow|Deny}]}]}. Resources: ``*``, ``Topic:t``, ``Topic:pre*`` (prefix), ``Topic:*``, the same
for ``Group:`` and ``Cluster:``.

One identity model: a user is the principal ``User:<name>`` of core/auth, so its policies are bindings in
the broker's one Authorizer next to Kafka's ACLs and plain_acl.yml's accounts, and all of them apply to
that principal whichever protocol it came in by. The translation (actions to Kafka operations): Pub is
WRITE, Sub READ, Create CREATE, Update ALTER, Delete DELETE, Get and List DESCRIBE, All ALL, Any
DESCRIBE (what "any access" is in Kafka: READ, WRITE, DELETE and ALTER imply it). ``Cluster:<name>``
is the one cluster resource; ``*`` is every topic, group and the cluster. A source IP is a binding's
host; none is any host. A Super user is a super user of the Authorizer. A disabled user gives nothing.

Left out (documented in the README): ``Namespace:`` resources and CIDR source ranges are refused; the
decision follows Kafka's rule (a matching Deny wins over any Allow) where RocketMQ lets the most
specific resource decide; Custom and Default policies count alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.auth.acl import (
    CLUSTER_NAME,
    WILDCARD,
    AclBinding,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

SOURCE = "acl2"
SUPER, NORMAL = "Super", "Normal"
ENABLE, DISABLE = "enable", "disable"
ALLOW, DENY = "Allow", "Deny"
CUSTOM, DEFAULT = "Custom", "Default"

#: ACL 2.0 action name -> the Kafka operation it is in the Authorizer
ACTIONS: dict[str, Operation] = {
    "Pub": Operation.WRITE,
    "Sub": Operation.READ,
    "Create": Operation.CREATE,
    "Update": Operation.ALTER,
    "Delete": Operation.DELETE,
    "Get": Operation.DESCRIBE,
    "List": Operation.DESCRIBE,
    "All": Operation.ALL,
    "Any": Operation.DESCRIBE,
}
_RESOURCE_TYPES = {"Topic": ResourceType.TOPIC, "Group": ResourceType.GROUP, "Cluster": ResourceType.CLUSTER}
_TYPE_NAMES = {v: k for k, v in _RESOURCE_TYPES.items()}
_KIND_NAMES = (*_RESOURCE_TYPES, "Namespace")


class AuthError(ValueError):
    """A user or ACL RocketMQ would refuse; the message is the response's remark."""


def _canon(
    value: Any, names: tuple[str, ...] | list[str] | dict[str, Any], what: str, default: str | None = None
) -> str:
    """The canonical spelling of an enum name (RocketMQ matches them case-insensitively)."""
    if value is None or value == "":
        if default is None:
            raise AuthError(f"The {what} is null.")
        return default
    for name in names:
        if str(value).lower() == name.lower():
            return name
    raise AuthError(f"The {what} {value!r} is unknown.")


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password: str
    user_type: str = NORMAL
    status: str = ENABLE

    @property
    def principal(self) -> str:
        return f"User:{self.username}"

    @property
    def enabled(self) -> bool:
        return self.status == ENABLE

    def to_json(self) -> dict[str, str]:
        return {
            "username": self.username,
            "password": self.password,
            "userType": self.user_type,
            "userStatus": self.status,
        }


def parse_user(obj: Any, username: str | None = None, old: User | None = None) -> User:
    """A UserInfo body (username from the header when given); absent fields keep ``old``'s."""
    if not isinstance(obj, dict):
        raise AuthError("The body of user is not a JSON object.")
    name = username or obj.get("username") or (old.username if old else "")
    if not isinstance(name, str) or not name.strip():
        raise AuthError("username can not be blank")
    password = obj.get("password") or (old.password if old else "")
    if not isinstance(password, str) or not password:
        raise AuthError("password can not be blank")
    user_type = _canon(obj.get("userType"), (SUPER, NORMAL), "userType", old.user_type if old else NORMAL)
    status = _canon(obj.get("userStatus"), (ENABLE, DISABLE), "userStatus", old.status if old else ENABLE)
    return User(name, password, user_type, status)


@dataclass(frozen=True, slots=True)
class Resource:
    """``*`` (type None), ``Topic:t``, ``Topic:pre*`` (prefixed) or ``Topic:*``."""

    resource_type: ResourceType | None
    name: str
    prefixed: bool = False

    @classmethod
    def parse(cls, text: Any) -> Resource:
        if not isinstance(text, str) or not text:
            raise AuthError("The resource is null.")
        if text == WILDCARD:
            return cls(None, WILDCARD)
        kind, sep, name = text.partition(":")
        resource_type = _RESOURCE_TYPES.get(_canon(kind, _KIND_NAMES, "resource type"))
        if resource_type is None or not sep or not name:
            raise AuthError(f"The resource {text!r} is not supported (Topic:, Group:, Cluster: or *).")
        if name != WILDCARD and name.endswith(WILDCARD):
            return cls(resource_type, name[:-1], True)
        return cls(resource_type, name)

    @property
    def key(self) -> str:
        if self.resource_type is None:
            return WILDCARD
        return f"{_TYPE_NAMES[self.resource_type]}:{self.name}{WILDCARD if self.prefixed else ''}"

    def patterns(self) -> Iterator[tuple[ResourceType, str, PatternType]]:
        """The Authorizer resource patterns this resource is."""
        if self.resource_type is None:
            yield (ResourceType.TOPIC, WILDCARD, PatternType.LITERAL)
            yield (ResourceType.GROUP, WILDCARD, PatternType.LITERAL)
            yield (ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL)
        elif self.resource_type == ResourceType.CLUSTER:
            yield (ResourceType.CLUSTER, CLUSTER_NAME, PatternType.LITERAL)
        else:
            pattern = PatternType.PREFIXED if self.prefixed else PatternType.LITERAL
            yield (self.resource_type, self.name, pattern)


@dataclass(frozen=True, slots=True)
class PolicyEntry:
    resource: Resource
    actions: tuple[str, ...]
    source_ips: tuple[str, ...] = ()
    decision: str = ALLOW

    def to_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource.key,
            "actions": list(self.actions),
            "sourceIps": list(self.source_ips),
            "decision": self.decision,
        }


@dataclass(slots=True)
class Policy:
    policy_type: str = CUSTOM
    entries: list[PolicyEntry] = field(default_factory=list)

    def update(self, new: list[PolicyEntry]) -> None:
        """RocketMQ's ``Policy.updateEntry``: an entry for a resource replaces the one it had."""
        for entry in new:
            at = next((i for i, e in enumerate(self.entries) if e.resource == entry.resource), None)
            if at is None:
                self.entries.append(entry)
            else:
                self.entries[at] = entry

    def to_json(self) -> dict[str, Any]:
        return {"policyType": self.policy_type, "entries": [e.to_json() for e in self.entries]}


@dataclass(slots=True)
class Acl:
    subject: str
    policies: list[Policy] = field(default_factory=list)

    def policy(self, policy_type: str) -> Policy | None:
        return next((p for p in self.policies if p.policy_type == policy_type), None)

    def update(self, new: list[Policy]) -> None:
        """RocketMQ's ``Acl.updatePolicy``: entries merge into the policy of the same type."""
        for policy in new:
            mine = self.policy(policy.policy_type)
            if mine is None:
                self.policies.append(policy)
            else:
                mine.update(policy.entries)

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "policies": [p.to_json() for p in self.policies]}


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AuthError(f"The {what} must be a list of strings.")
    return tuple(value)


def _source_ip(ip: str) -> str:
    if "/" in ip or "-" in ip:
        raise AuthError(f"The sourceIp {ip!r} is a range; ferrymq takes single addresses only.")
    return ip


def parse_entry(obj: Any) -> PolicyEntry:
    if not isinstance(obj, dict):
        raise AuthError("A policy entry is not a JSON object.")
    actions = tuple(_canon(a, list(ACTIONS), "action") for a in _strings(obj.get("actions"), "actions"))
    if not actions:
        raise AuthError("The actions is empty.")
    return PolicyEntry(
        Resource.parse(obj.get("resource")),
        actions,
        tuple(_source_ip(ip) for ip in _strings(obj.get("sourceIps"), "sourceIps")),
        _canon(obj.get("decision"), (ALLOW, DENY), "decision"),
    )


def parse_subject(text: Any) -> str:
    if not isinstance(text, str) or not text.startswith("User:") or len(text) <= len("User:"):
        raise AuthError(f"The subject {text!r} is not of the form User:<name>.")
    return text


def parse_acl(obj: Any, subject: str | None = None) -> Acl:
    """An AclInfo body; the header's subject is used when the body has none."""
    if not isinstance(obj, dict):
        raise AuthError("The body of acl is not a JSON object.")
    acl = Acl(parse_subject(obj.get("subject") or subject))
    raw = obj.get("policies")
    if not isinstance(raw, list) or not raw:
        raise AuthError("The policies is empty.")
    for p in raw:
        if not isinstance(p, dict):
            raise AuthError("A policy is not a JSON object.")
        policy_type = _canon(p.get("policyType"), (CUSTOM, DEFAULT), "policyType", CUSTOM)
        entries = p.get("entries")
        if not isinstance(entries, list) or not entries:
            raise AuthError("The policy entries is empty.")
        acl.update([Policy(policy_type, [parse_entry(e) for e in entries])])
    return acl


def bindings(users: dict[str, User], acls: dict[str, Acl]) -> list[AclBinding]:
    """The Authorizer bindings of every enabled user's ACL."""
    out: list[AclBinding] = []
    for acl in acls.values():
        user = users.get(acl.subject.removeprefix("User:"))
        if user is None or not user.enabled:
            continue
        for policy in acl.policies:
            for entry in policy.entries:
                permission = Permission.ALLOW if entry.decision == ALLOW else Permission.DENY
                ops = sorted({ACTIONS[a] for a in entry.actions})
                for resource_type, name, pattern in entry.resource.patterns():
                    for host in entry.source_ips or (WILDCARD,):
                        out += [
                            AclBinding(resource_type, name, pattern, acl.subject, host, op, permission)
                            for op in ops
                        ]
    return out


def super_users(users: dict[str, User]) -> list[str]:
    return [u.principal for u in users.values() if u.user_type == SUPER and u.enabled]
