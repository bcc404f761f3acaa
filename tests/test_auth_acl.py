"""The shared authorizer decides as Apache Kafka's does (core/auth/acl.py)."""

from __future__ import annotations

from ferrymq.core.auth.acl import (
    AclBinding,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

T, G = ResourceType.TOPIC, ResourceType.GROUP


def bind(
    name: str,
    op: Operation,
    perm: Permission = Permission.ALLOW,
    principal: str = "User:alice",
    pattern: PatternType = PatternType.LITERAL,
    rtype: ResourceType = T,
    host: str = "*",
) -> AclBinding:
    return AclBinding(rtype, name, pattern, principal, host, op, perm)


def test_no_binding_means_denied_unless_opened() -> None:
    assert not Authorizer().authorize("User:alice", "1.2.3.4", Operation.READ, T, "orders")
    assert Authorizer(allow_if_no_acl=True).authorize("User:alice", "1.2.3.4", Operation.READ, T, "orders")


def test_literal_prefixed_and_wildcard_patterns() -> None:
    a = Authorizer()
    a.set_bindings(
        "kafka",
        [
            bind("orders", Operation.WRITE),
            bind("logs-", Operation.READ, pattern=PatternType.PREFIXED),
            bind("*", Operation.DESCRIBE, principal="User:bob"),
        ],
    )
    assert a.authorize("User:alice", "h", Operation.WRITE, T, "orders")
    assert not a.authorize("User:alice", "h", Operation.WRITE, T, "orders2")
    assert a.authorize("User:alice", "h", Operation.READ, T, "logs-app")
    assert not a.authorize("User:alice", "h", Operation.READ, T, "log")
    assert a.authorize("User:bob", "h", Operation.DESCRIBE, T, "anything")
    assert not a.authorize("User:bob", "h", Operation.READ, T, "anything")
    assert not a.authorize("User:alice", "h", Operation.READ, G, "orders")  # another resource type


def test_deny_wins_and_implied_describe() -> None:
    a = Authorizer()
    a.set_bindings("kafka", [bind("orders", Operation.ALL), bind("orders", Operation.READ, Permission.DENY)])
    assert a.authorize("User:alice", "h", Operation.WRITE, T, "orders")
    assert not a.authorize("User:alice", "h", Operation.READ, T, "orders")
    a.set_bindings("kafka", [bind("orders", Operation.WRITE)])
    assert a.authorize("User:alice", "h", Operation.DESCRIBE, T, "orders")  # WRITE implies DESCRIBE
    assert not a.authorize("User:alice", "h", Operation.DELETE, T, "orders")


def test_host_any_principal_super_users_and_sources() -> None:
    a = Authorizer(super_users=["User:admin"])
    a.set_bindings("kafka", [bind("t", Operation.READ, principal="User:*", host="10.0.0.1")])
    a.set_bindings("plain_acl", [bind("t", Operation.WRITE, principal="User:rk")])
    assert a.authorize("User:anyone", "10.0.0.1", Operation.READ, T, "t")
    assert not a.authorize("User:anyone", "10.0.0.2", Operation.READ, T, "t")
    assert a.authorize("User:rk", "x", Operation.WRITE, T, "t")
    assert a.authorize("User:admin", "x", Operation.DELETE, ResourceType.CLUSTER, "kafka-cluster")
    a.set_bindings("plain_acl", [])  # reloading one source replaces only its own bindings
    assert not a.authorize("User:rk", "x", Operation.WRITE, T, "t")
    assert len(a.bindings()) == 1 and a.bindings("kafka")[0].host == "10.0.0.1"
