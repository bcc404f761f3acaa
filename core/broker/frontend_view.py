"""What a protocol frontend lets the admin API see of its own state, as plain data.

The admin API and the Kafka frontend never import each other: the ``ferrymq`` command hands the
Kafka frontend to the admin server as a :class:`FrontendView` (``AdminServer.add_frontend``).
Through it the admin lists the frontend's consumer groups (a ``GroupProvider``) and expands the
batch entries the frontend stores (e.g. Kafka record batches) into one record each; the admin
turns these dataclasses into its own response models.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

from ferrymq.core.broker.group_views import GroupProvider


@dataclass(frozen=True, slots=True)
class RecordView:
    """One record of a stored batch entry as a RocketMQ consumer would get it: the record's key
    is in ``properties`` as KEYS, its headers as properties, the tags header as TAGS."""

    queue_offset: int
    born_timestamp: int
    body: bytes
    properties: dict[str, str] = field(default_factory=dict)


class FrontendView(Protocol):
    """A frontend's state for the admin API: its groups and a reader of its batch formats."""

    @property
    def groups(self) -> GroupProvider: ...

    @property
    def batch_formats(self) -> Collection[int]:
        """Batch-entry formats (``core.store.BATCH_FORMAT_*``, without flags) it can expand."""
        ...

    def batch_records(self, fmt: int, payload: bytes, count: int) -> list[RecordView]:
        """The records of a batch entry's payload (``count`` messages); ValueError if unreadable."""
        ...
