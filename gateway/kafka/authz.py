"""Authorization of Kafka requests: one question to core's Authorizer per request and resource.

``broker.security.authorizer`` is None when ``kafkaAuthorizerEnable`` is off, and then every check is that
one ``is None`` test: nothing per record. The principal is the connection's (SASL, or User:ANONYMOUS) and
the host its peer address, as Kafka's ACLs name them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import ANY_PRINCIPAL, CLUSTER_NAME, WILDCARD, Operation, Permission, ResourceType

if TYPE_CHECKING:
    from ferrymq.gateway.kafka.context import RequestContext


def allowed(ctx: RequestContext, operation: Operation, resource_type: ResourceType, name: str) -> bool:
    authorizer = ctx.frontend.broker.security.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize(ctx.conn.principal, ctx.conn.host, operation, resource_type, name)


def on(ctx: RequestContext) -> bool:
    """Whether ACLs are enforced at all (Kafka answers the ACL APIs SECURITY_DISABLED otherwise)."""
    return ctx.frontend.broker.security.authorizer is not None


def topic(ctx: RequestContext, operation: Operation, name: str) -> bool:
    return allowed(ctx, operation, ResourceType.TOPIC, name)


def group(ctx: RequestContext, operation: Operation, name: str) -> bool:
    return allowed(ctx, operation, ResourceType.GROUP, name)


def cluster(ctx: RequestContext, operation: Operation) -> bool:
    return allowed(ctx, operation, ResourceType.CLUSTER, CLUSTER_NAME)


def transactional_id(ctx: RequestContext, operation: Operation, name: str) -> bool:
    return allowed(ctx, operation, ResourceType.TRANSACTIONAL_ID, name)


def idempotent_write(ctx: RequestContext) -> bool:
    """InitProducerId without a transactional id: IDEMPOTENT_WRITE on the cluster, or WRITE allowed on some
    topic (Kafka's authorizeByResourceType)."""
    authorizer = ctx.frontend.broker.security.authorizer
    if authorizer is None or cluster(ctx, Operation.IDEMPOTENT_WRITE):
        return True
    principal, host = ctx.conn.principal, ctx.conn.host
    if principal in authorizer.super_users:
        return True
    return any(
        b.resource_type == ResourceType.TOPIC
        and b.permission == Permission.ALLOW
        and b.operation in (Operation.WRITE, Operation.ALL)
        and b.principal in (principal, ANY_PRINCIPAL)
        and b.host in (host, WILDCARD)
        and authorizer.authorize(principal, host, Operation.WRITE, ResourceType.TOPIC, b.resource_name)
        for b in authorizer.bindings()
    )


#: Kafka's ConfigResource types checked on a topic or group (the others on the cluster)
_CONFIG_TOPIC, _CONFIG_GROUP = 2, 32
#: Kafka's messages for the three refusals a config request can carry
_CONFIG_REFUSALS = {
    ResourceType.TOPIC: (ErrorCode.topic_authorization_failed, "Topic authorization failed."),
    ResourceType.GROUP: (ErrorCode.group_authorization_failed, "Group authorization failed."),
    ResourceType.CLUSTER: (ErrorCode.cluster_authorization_failed, "Cluster authorization failed."),
}


def config_refusal(
    ctx: RequestContext, operation: Operation, config_type: int, name: str
) -> tuple[ErrorCode, str] | None:
    """Describe/(Incremental)AlterConfigs on one config resource (DESCRIBE_CONFIGS or ALTER_CONFIGS): a
    topic's on the topic, a group's on the group, the broker's, its loggers' and client metrics' on the
    cluster (as Kafka's ConfigHelper and KafkaApis ask); the error and message of a refusal, or None."""
    if config_type == _CONFIG_TOPIC:
        resource_type = ResourceType.TOPIC
    elif config_type == _CONFIG_GROUP:
        resource_type = ResourceType.GROUP
    else:
        resource_type, name = ResourceType.CLUSTER, CLUSTER_NAME
    if allowed(ctx, operation, resource_type, name):
        return None
    return _CONFIG_REFUSALS[resource_type]
