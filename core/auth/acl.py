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
