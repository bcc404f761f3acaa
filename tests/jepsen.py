"""A checker in the style of Jepsen's queue tests: pure functions over a recorded history.

The history of a run is three lists:

* ``acks`` -- every send the broker acknowledged (SEND_OK: with SYNC_MASTER, an in-sync slave has
  it too), in the order the acknowledgements arrived, with the queue and queue offset the broker
  answered;
* ``observed`` -- what consumers read while the run went on (any source, any order);
* ``final`` -- the whole of each queue, read from offset 0 after the run, in the order read.

``check`` finds what the guarantee of issue 9 forbids: an acknowledged message missing from the
final log (lost), a message at two offsets (duplicate), two different messages at one queue
offset (whoever saw them: a consumer, the final read or an acknowledgement), offsets that go
backwards (in the final read, or for acknowledgements of one queue that arrived in order), and a
message a consumer read that the final log no longer holds (read, then truncated).

Holds no tests (tests/test_jepsen_checker.py checks the checker; the netns fault tests use it).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ack:
    """An acknowledged send: ``value`` stored at ``offset`` of ``queue``."""

    value: bytes
    queue: int
    offset: int


@dataclass(frozen=True, slots=True)
class Read:
    """A message read at ``offset`` of ``queue``; ``source`` names the reader (for reports)."""

    queue: int
    offset: int
    value: bytes
    source: str = "final"


@dataclass(slots=True)
class Report:
    lost: list[Ack] = field(default_factory=list)
    duplicates: dict[bytes, list[tuple[int, int]]] = field(default_factory=dict)
    conflicts: dict[tuple[int, int], set[bytes]] = field(default_factory=dict)
    out_of_order: list[str] = field(default_factory=list)
    #: read by a consumer, absent from the final log: a read of a tail that was later truncated
    vanished: list[Read] = field(default_factory=list)
    acked: int = 0
    final: int = 0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates or self.conflicts or self.out_of_order or self.vanished)

    def __str__(self) -> str:
        parts = [f"{self.acked} acknowledged, {self.final} in the final log"]
        if self.lost:
            parts.append(f"LOST {len(self.lost)}: {_few(self.lost)}")
        if self.duplicates:
            parts.append(f"DUPLICATED {len(self.duplicates)}: {_few(self.duplicates.items())}")
        if self.conflicts:
            parts.append(f"TWO MESSAGES AT ONE OFFSET {len(self.conflicts)}: {_few(self.conflicts.items())}")
        if self.out_of_order:
            parts.append(f"OUT OF ORDER {len(self.out_of_order)}: {_few(self.out_of_order)}")
        if self.vanished:
            parts.append(f"READ THEN TRUNCATED {len(self.vanished)}: {_few(self.vanished)}")
        return "; ".join(parts)


def _few(items: Iterable[object], n: int = 5) -> str:
    items = list(items)
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def _increasing(label: str, offsets: Sequence[int]) -> list[str]:
    return [f"{label}: offset {b} after {a}" for a, b in itertools.pairwise(offsets) if b <= a]


def check(acks: Sequence[Ack], final: Sequence[Read], observed: Iterable[Read] = ()) -> Report:
    """Everything the history shows that the guarantee forbids (``Report.ok`` when nothing)."""
    observed = list(observed)
    report = Report(acked=len(acks), final=len(final))

    at: dict[tuple[int, int], set[bytes]] = defaultdict(set)
    for r in (*final, *observed):
        at[(r.queue, r.offset)].add(r.value)
    for a in acks:
        at[(a.queue, a.offset)].add(a.value)
    report.conflicts = {k: v for k, v in at.items() if len(v) > 1}

    where: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    final_by_queue: dict[int, list[int]] = defaultdict(list)
    for r in final:
        where[r.value].append((r.queue, r.offset))
        final_by_queue[r.queue].append(r.offset)
    report.duplicates = {v: sorted(set(p)) for v, p in where.items() if len(set(p)) > 1}
    report.lost = [a for a in acks if a.value not in where]
    report.vanished = [r for r in observed if r.value not in where]

    for q, offsets in sorted(final_by_queue.items()):
        report.out_of_order += _increasing(f"final read of queue {q}", offsets)
    acked_by_queue: dict[int, list[int]] = defaultdict(list)
    for a in acks:
        acked_by_queue[a.queue].append(a.offset)
    for q, offsets in sorted(acked_by_queue.items()):
        report.out_of_order += _increasing(f"acknowledgements of queue {q}", offsets)
    return report


def missing(acks: Iterable[Ack], observed: Iterable[Read]) -> list[Ack]:
    """Acknowledged messages no consumer has read (consumers resumed when this is empty)."""
    seen = {r.value for r in observed}
    return [a for a in acks if a.value not in seen]
