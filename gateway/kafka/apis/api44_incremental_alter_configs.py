"""IncrementalAlterConfigs (key 44), versions 0-1: set or delete topic configs one by one.

SET and DELETE of the topic configs topics.py knows (retention.ms, retention.bytes and
max.message.bytes are enforced; values not served, such as cleanup.policy=compact, are
INVALID_CONFIG; the rest stored); APPEND/SUBTRACT on list configs (cleanup.policy). validate_only
checks without changing. Broker configs come from broker.conf and are read-only here.
With an authorizer, ALTER_CONFIGS on the topic (else TOPIC_AUTHORIZATION_FAILED) or, for the broker, on the
cluster (CLUSTER_AUTHORIZATION_FAILED), per resource, as Kafka; AlterConfigs (api33) shares this.
Leaves out: changing broker configs, and resource types other than topics and brokers
(INVALID_REQUEST).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from kio.schema.errors import ErrorCode

from ferrymq.core.auth.acl import Operation
from ferrymq.gateway.kafka import authz, topics
from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.context import RequestContext
from ferrymq.gateway.kafka.responses import NO_THROTTLE, respond

TOPIC, BROKER = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3


@api(44, 0, 1)
async def handle(ctx: RequestContext, request: Any) -> Any:
    return alter(ctx, request, _ops)


def _ops(configs: Any) -> list[tuple[str, int, str | None]]:
    return [(c.name, c.config_operation, c.value) for c in configs]


def alter(
    ctx: RequestContext,
    request: Any,
    ops_of: Callable[[Any], list[tuple[str, int, str | None]]],
    replace: bool = False,
) -> Any:
    """The response to an (Incremental)AlterConfigs request: ``apply`` for each resource."""
    out = []
    for res in request.resources:
        ops = ops_of(res.configs)
        error, message = apply(ctx, res.resource_type, res.resource_name, ops, request.validate_only, replace)
        out.append(
            {
                "error_code": error,
                "error_message": message,
                "resource_type": res.resource_type,
                "resource_name": res.resource_name,
            }
        )
    return respond(request, {"throttle_time": NO_THROTTLE, "responses": out})


def apply(
    ctx: RequestContext,
    resource_type: int,
    name: str,
    ops: list[tuple[str, int, str | None]],
    validate_only: bool,
    replace: bool = False,
) -> tuple[ErrorCode, str | None]:
    """Change one resource's configs (``replace``: AlterConfigs, the given set replaces all)."""
    broker = ctx.frontend.broker
    refusal = authz.config_refusal(ctx, Operation.ALTER_CONFIGS, resource_type, name)
    if refusal is not None:
        return refusal
    if resource_type == BROKER:
        return ErrorCode.invalid_request, "Broker configs are read-only here: set them in broker.conf."
    if resource_type != TOPIC:
        return ErrorCode.invalid_request, f"Unsupported resource type {resource_type}"
    tc = broker.topics.get(name)
    if tc is None:
        return ErrorCode.unknown_topic_or_partition, f"Topic {name} does not exist."
    attrs = {} if replace else dict(tc.attributes)
    if replace:  # keep attributes that are not Kafka configs (RocketMQ's own)
        attrs = {k: v for k, v in tc.attributes.items() if k not in topics.TOPIC_CONFIG_DEFAULTS}
    for key, op, value in ops:
        if op == DELETE:
            if key not in topics.TOPIC_CONFIG_DEFAULTS:
                return ErrorCode.invalid_config, f"Unknown topic config name: {key}"
            attrs.pop(key, None)
            continue
        if op in (APPEND, SUBTRACT):
            if key != "cleanup.policy":
                return ErrorCode.invalid_config, f"Config {key} is not a list: APPEND/SUBTRACT do not apply"
            current = attrs.get(key, topics.TOPIC_CONFIG_DEFAULTS[key]).split(",")
            items = [v for v in (value or "").split(",") if v]
            if op == APPEND:
                value = ",".join(current + [v for v in items if v not in current])
            else:
                value = ",".join(v for v in current if v not in items)
        elif op != SET:
            return ErrorCode.invalid_request, f"Unknown config operation {op}"
        problem = topics.config_value_error(key, value)
        if problem:
            return ErrorCode.invalid_config, problem
        if value is None:
            attrs.pop(key, None)
        else:
            attrs[key] = value
    if not validate_only and attrs != tc.attributes:
        topics.update(broker, dataclasses.replace(tc, attributes=attrs))
        ctx.frontend.apply_retention()
    return ErrorCode.none, None
