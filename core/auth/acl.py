"""ACL bindings and the authorizer that reads them, with Apache Kafka's semantics.

Every protocol's permissions become bindings here: Kafka's CreateAcls, RocketMQ's plain_acl.yml accounts
(PUB is WRITE on a topic, SUB is READ on a topic or group), the admin API. Each source owns its own set
(``set_bindings(source, ...)``), so reloading one file replaces only what it gave.

Decision (as Kafka's StandardAuthorizer): super users may do anything; a matching DENY wins over any ALLOW;
DESCRIBE is implied by READ, WRITE, DELETE and ALTER, DESCRIBE_CONFIGS by ALTER_CONFIGS; a resource no
binding names is open only with ``allow_if_no_acl`` (Kafka's allow.everyone.if.no.acl.found).
The enum values are Kafka's wire codes, so the Kafka ACL APIs pass them through unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

WILDCARD = "*"
ANY_PRINCIPAL = "User:*"
CLUSTER_NAME = "kafka-cluster"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class Operation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class Permission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


#: an ALLOW of the key also allows these (Kafka's implied operations)
_IMPLIES: dict[Operation, frozenset[Operation]] = {
    Operation.DESCRIBE: frozenset(
        {Operation.DESCRIBE, Operation.READ, Operation.WRITE, Operation.DELETE, Operation.ALTER}
    ),
    Operation.DESCRIBE_CONFIGS: frozenset({Operation.DESCRIBE_CONFIGS, Operation.ALTER_CONFIGS}),
}


@dataclass(frozen=True, slots=True)
class AclBinding:
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: Operation
    permission: Permission

    def names(self, resource_type: ResourceType, name: str) -> bool:
        """Whether this binding's resource pattern covers the resource."""
        if self.resource_type != resource_type:
            return False
        if self.pattern_type == PatternType.PREFIXED:
            return name.startswith(self.resource_name)
        return self.resource_name == name or self.resource_name == WILDCARD


class Authorizer:
    """Answers "may this principal do this to that resource" from the bindings of every source."""

    def __init__(self, super_users: Iterable[str] = (), allow_if_no_acl: bool = False) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl
        self._sources: dict[str, tuple[AclBinding, ...]] = {}
        self._configured_super_users = self.super_users
        self._source_super_users: dict[str, frozenset[str]] = {}

    def set_bindings(self, source: str, bindings: Iterable[AclBinding]) -> None:
        self._sources[source] = tuple(bindings)

    def set_super_users(self, source: str, principals: Iterable[str]) -> None:
        """Super users a source names (plain_acl.yml ``admin: true``), besides the configured ones."""
        self._source_super_users[source] = frozenset(principals)
        self.super_users = self._configured_super_users.union(*self._source_super_users.values())

    def bindings(self, source: str | None = None) -> list[AclBinding]:
        if source is not None:
            return list(self._sources.get(source, ()))
        return [b for group in self._sources.values() for b in group]

    def authorize(
        self, principal: str, host: str, operation: Operation, resource_type: ResourceType, name: str
    ) -> bool:
        if principal in self.super_users:
            return True
        relevant = [b for group in self._sources.values() for b in group if b.names(resource_type, name)]
        if not relevant:
            return self.allow_if_no_acl
        mine = [
            b for b in relevant if b.principal in (principal, ANY_PRINCIPAL) and b.host in (host, WILDCARD)
        ]
        if any(b.permission == Permission.DENY and b.operation in (operation, Operation.ALL) for b in mine):
            return False
        allowed_by = _IMPLIES.get(operation, frozenset({operation})) | {Operation.ALL}
        return any(b.permission == Permission.ALLOW and b.operation in allowed_by for b in mine)


@dataclass(frozen=True, slots=True)
class AclFilter:
    """Kafka's AclBindingFilter (DescribeAcls, DeleteAcls): None and ANY match anything; pattern MATCH
    finds the bindings that would apply to the named resource (literal, wildcard or prefix)."""

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: Operation = Operation.ANY
    permission: Permission = Permission.ANY

    def matches(self, b: AclBinding) -> bool:
        return self._matches_pattern(b) and self._matches_entry(b)

    def _matches_pattern(self, b: AclBinding) -> bool:
        if self.resource_type != ResourceType.ANY and self.resource_type != b.resource_type:
            return False
        if self.pattern_type == PatternType.MATCH:
            if self.resource_name is None:
                return b.pattern_type in (PatternType.LITERAL, PatternType.PREFIXED)
            return b.names(b.resource_type, self.resource_name)
        if self.pattern_type != PatternType.ANY and self.pattern_type != b.pattern_type:
            return False
        return self.resource_name is None or self.resource_name == b.resource_name

    def _matches_entry(self, b: AclBinding) -> bool:
        return (
            (self.principal is None or self.principal == b.principal)
            and (self.host is None or self.host == b.host)
            and (self.operation == Operation.ANY or self.operation == b.operation)
            and (self.permission == Permission.ANY or self.permission == b.permission)
        )


def invalid_binding(b: AclBinding) -> str | None:
    """Why Kafka would refuse to store this binding (CreateAcls' INVALID_REQUEST), or None."""
    if b.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY):
        return "resource type must be specific"
    if b.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return "pattern type must be LITERAL or PREFIXED"
    if b.operation in (Operation.UNKNOWN, Operation.ANY):
        return "operation must be specific"
    if b.permission not in (Permission.ALLOW, Permission.DENY):
        return "permission must be ALLOW or DENY"
    if ":" not in b.principal or not b.principal.split(":", 1)[1]:
        return f"principal {b.principal!r} is not of the form Type:name"
    if not b.resource_name:
        return "resource name must not be empty"
    if b.resource_type == ResourceType.CLUSTER and (
        b.pattern_type != PatternType.LITERAL or b.resource_name != CLUSTER_NAME
    ):
        return f"the cluster resource is the literal {CLUSTER_NAME!r}"
    return None
