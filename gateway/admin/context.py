"""What every admin endpoint works with: the broker, the cluster source, the group registry,
the auth settings; and the errors endpoints raise."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import HTTPException, Request

from ferrymq.core.broker.group_views import GroupRegistry
from ferrymq.core.broker.routes_source import ClusterSource
from ferrymq.core.broker.topic_config import (
    AUTO_CREATE_TOPIC_KEY,
    DLQ_GROUP_TOPIC_PREFIX,
    NOT_ALLOWED_SEND,
    OFFSET_MOVED_EVENT,
    RETRY_GROUP_TOPIC_PREFIX,
    SELF_TEST_TOPIC,
    TRACE_TOPIC,
)
from ferrymq.core.remoting.route import TopicConfig
from ferrymq.gateway.admin.message_view import BatchDecoder
from ferrymq.gateway.admin.models import TopicKind

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


@dataclass
class AdminContext:
    broker: Broker
    routes: ClusterSource
    token: str | None = None
    read_open: bool = False
    #: path prefixes served without the token (adminOpenPaths), e.g. ("/healthz", "/metrics")
    open_paths: tuple[str, ...] = ()
    groups: GroupRegistry = field(init=False)
    batch_decoders: dict[int, BatchDecoder] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    #: bytes the store occupied when last measured (see disk_used)
    last_disk_used: int = 0
    _disk_measured: float = float("-inf")

    def __post_init__(self) -> None:
        self.groups = GroupRegistry(self.broker)

    async def disk_used(self, max_age: float = 5.0) -> int:
        """Bytes the store occupies; walking the store directory runs in a thread, at most
        every ``max_age`` seconds, so it never stalls the broker's event loop."""
        if time.monotonic() - self._disk_measured > max_age:
            self.last_disk_used = await asyncio.to_thread(lambda: self.broker.store.disk_used_bytes)
            self._disk_measured = time.monotonic()
        return self.last_disk_used

    def topic(self, name: str) -> TopicConfig:
        tc = self.broker.topics.get(name)
        if tc is None:
            raise not_found(f"topic {name!r} not found")
        return tc

    def system_topics(self) -> set[str]:
        c = self.broker.config
        return {
            AUTO_CREATE_TOPIC_KEY,
            SELF_TEST_TOPIC,
            OFFSET_MOVED_EVENT,
            TRACE_TOPIC,
            c.broker_cluster_name,
            c.broker_name,
            *NOT_ALLOWED_SEND,
        }

    def topic_kind(self, name: str) -> TopicKind:
        if name.startswith(RETRY_GROUP_TOPIC_PREFIX):
            return "retry"
        if name.startswith(DLQ_GROUP_TOPIC_PREFIX):
            return "dlq"
        if name in self.system_topics() or name.startswith("rmq_sys_"):
            return "system"
        return "normal"


def get_ctx(request: Request) -> AdminContext:
    ctx: AdminContext = request.app.state.ctx
    return ctx


def peer_of(request: Request) -> str:
    client = request.client
    return f"{client.host}:{client.port}" if client else "?"


def not_found(detail: str) -> HTTPException:
    return HTTPException(404, detail)


def conflict(detail: str) -> HTTPException:
    return HTTPException(409, detail)


def unprocessable(detail: str) -> HTTPException:
    return HTTPException(422, detail)


ERRORS = {
    404: {"description": "unknown topic, group or message"},
    409: {"description": "conflicts with the current state"},
    422: {"description": "bad parameters"},
}
