"""AlterConfigs (key 33), versions 0-2: replace a topic's configs (the pre-KIP-339 API that
kafka-python's admin ``alter_configs`` uses). Same checks as IncrementalAlterConfigs; configs
not named go back to their defaults.
ACLs as IncrementalAlterConfigs: ALTER_CONFIGS on the topic or the cluster.
Leaves out: changing broker configs, and resource types other than topics and brokers
(INVALID_REQUEST).
"""

from __future__ import annotations

from typing import Any

from ferrymq.gateway.kafka.apis import api
from ferrymq.gateway.kafka.apis.api44_incremental_alter_configs import SET, alter
from ferrymq.gateway.kafka.context import RequestContext


@api(33, 0, 2)
async def handle(ctx: RequestContext, request: Any) -> Any:
    return alter(ctx, request, lambda configs: [(c.name, SET, c.value) for c in configs], replace=True)
