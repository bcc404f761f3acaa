"""The message store: commit log, consume queues and key index, on disk.

The commit log is the single source of truth; consume queues and the index are derived from it
and rebuilt from it after a crash. See docs/architecture.md.
"""

from ferrymq.core.store.message_store import (
    GetResult,
    GetStatus,
    MessageStore,
    PutResult,
    PutStatus,
)

__all__ = ["GetResult", "GetStatus", "MessageStore", "PutResult", "PutStatus"]
