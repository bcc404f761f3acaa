"""The message store: commit log, consume queues and key index, on disk.

The commit log is the single source of truth; consume queues and the index are derived from it
and rebuilt from it after a crash. See docs/architecture.md. Readers get commit-log entries as
``StoredEntry`` (``MessageStore.entries``, ``entry_for``, ``entry_at``; ``read_entry`` and
``iter_entries`` over buffers), never by unpacking entry headers themselves.
"""

from ferrymq.core.store.commit_log import DispatchRequest
from ferrymq.core.store.entry import (
    BATCH_FORMAT_KAFKA_V2,
    CorruptRecord,
    EntryKind,
    StoredEntry,
    iter_entries,
    read_entry,
)
from ferrymq.core.store.message_store import (
    GetResult,
    GetStatus,
    MessageStore,
    PutResult,
    PutStatus,
    ReplicationMismatch,
    StoreUnavailable,
)

__all__ = [
    "BATCH_FORMAT_KAFKA_V2",
    "CorruptRecord",
    "DispatchRequest",
    "EntryKind",
    "GetResult",
    "GetStatus",
    "MessageStore",
    "PutResult",
    "PutStatus",
    "ReplicationMismatch",
    "StoreUnavailable",
    "StoredEntry",
    "iter_entries",
    "read_entry",
]
