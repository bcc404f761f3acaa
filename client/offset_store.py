"""Consumer offsets: where each queue's consumed offset is kept and committed (Java's ``OffsetStore``).

* :class:`RemoteBrokerOffsetStore` -- clustering: the group's offsets live on the broker of each
  queue (QUERY_CONSUMER_OFFSET, UPDATE_CONSUMER_OFFSET): its master, or a slave while the master
  is gone. The push consumer keeps them in memory and persists them periodically; the lite-pull
  consumer commits through :meth:`commit` directly. The in-memory offsets, not the broker's, are
  what a consumer goes on from, so switching between master and slave never moves them back.
* :class:`LocalFileOffsetStore` -- broadcasting: every member keeps its own offsets in
  ``<dir>/<client id>/<group>/offsets.json`` (the layout of Java's ``offsets.json``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ferrymq.client import _api
from ferrymq.client._instance import ClientInstance
from ferrymq.client.message import MessageQueue

log = logging.getLogger("ferrymq.client")


class OffsetStore:
    """The consumed offset of each queue (in memory) and where it is committed."""

    def __init__(self) -> None:
        self.offsets: dict[MessageQueue, int] = {}

    def update(self, mq: MessageQueue, offset: int, increase_only: bool) -> None:
        cur = self.offsets.get(mq)
        if cur is None or not increase_only or offset > cur:
            self.offsets[mq] = offset

    def remove(self, mq: MessageQueue) -> None:
        """Forget a queue given up (the next owner's commits win from now on)."""
        self.offsets.pop(mq, None)

    async def read(self, mq: MessageQueue) -> int | None:
        """The stored offset of ``mq``; None when there is none."""
        raise NotImplementedError

    async def persist(self, mqs: Iterable[MessageQueue], *, oneway: bool) -> None:
        """Commit the in-memory offsets of ``mqs``."""
        raise NotImplementedError


class RemoteBrokerOffsetStore(OffsetStore):
    """Clustering: offsets live on the broker of each queue (``RemoteBrokerOffsetStore``)."""

    def __init__(self, instance: ClientInstance, group: str, timeout: float) -> None:
        super().__init__()
        self.instance = instance
        self.group = group
        self.timeout = timeout
        #: the member each queue's offset was last committed to
        self.committed_at: dict[MessageQueue, str] = {}

    def remove(self, mq: MessageQueue) -> None:
        super().remove(mq)
        self.committed_at.pop(mq, None)

    async def read(self, mq: MessageQueue) -> int | None:
        return await self.query(mq)

    async def query(self, mq: MessageQueue, *, set_zero_if_not_found: bool | None = None) -> int | None:
        """QUERY_CONSUMER_OFFSET on ``mq``'s master (a slave while it is gone); None when the
        group has none."""
        addr = await self.instance.member_addr(mq)
        return await _api.query_consumer_offset(
            self.instance.remote,
            addr,
            self.group,
            mq,
            self.timeout,
            set_zero_if_not_found=set_zero_if_not_found,
        )

    async def commit(self, mq: MessageQueue, offset: int, *, oneway: bool) -> None:
        """UPDATE_CONSUMER_OFFSET of ``offset`` on ``mq``'s master (a slave while it is gone);
        raises on failure."""
        addr = await self.instance.member_addr(mq)
        await _api.update_consumer_offset(
            self.instance.remote, addr, self.group, mq, offset, self.timeout, oneway=oneway
        )
        self.committed_at[mq] = addr

    def moved(self, mq: MessageQueue) -> bool:
        """Whether ``mq``'s offset now goes to another member than its last commit did (the
        master is back, or gone): an unchanged offset must then be committed again."""
        last = self.committed_at.get(mq)
        found = self.instance.routes.find_subscribe_addr(mq.broker_name)
        return last is not None and found is not None and found[0] != last

    async def persist(self, mqs: Iterable[MessageQueue], *, oneway: bool) -> None:
        """Commit every known offset of ``mqs`` concurrently; failures are logged."""
        jobs = []
        for mq in mqs:
            offset = self.offsets.get(mq)
            if offset is None or offset < 0:
                continue
            jobs.append(self.commit(mq, offset, oneway=oneway))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
                log.warning("offset commit of group %s failed: %s", self.group, res)


class LocalFileOffsetStore(OffsetStore):
    """Broadcasting: offsets in ``<dir>/<client id>/<group>/offsets.json`` (``LocalFileOffsetStore``)."""

    def __init__(self, directory: Path, client_id: str, group: str) -> None:
        super().__init__()
        safe = client_id.replace(os.sep, "_")
        self.path = directory / safe / group / "offsets.json"
        try:
            data = json.loads(self.path.read_text())
            for item in data.get("offsetTable", []):
                mq = MessageQueue(str(item["topic"]), str(item["brokerName"]), int(item["queueId"]))
                self.offsets[mq] = int(item["offset"])
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("offsets file %s unreadable (%s); starting per consume_from", self.path, exc)
        self.persisted = dict(self.offsets)

    def remove(self, mq: MessageQueue) -> None:
        """Kept: this member's own offsets outlive a queue coming and going."""

    async def read(self, mq: MessageQueue) -> int | None:
        return self.offsets.get(mq)

    async def persist(self, mqs: Iterable[MessageQueue], *, oneway: bool) -> None:
        """Write the whole table (atomically) if anything changed since the last write."""
        if self.persisted == self.offsets:
            return
        table = [
            {"topic": mq.topic, "brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off}
            for mq, off in sorted(self.offsets.items())
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"offsetTable": table}, indent=1))
        os.replace(tmp, self.path)
        self.persisted = dict(self.offsets)
