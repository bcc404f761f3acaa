"""KIP-848 server-side assignors: Kafka's ``uniform`` and ``range`` (group.consumer.assignors).

Pure functions from (members' subscriptions, topic partition counts, current assignment) to a
target assignment; the consumer group state machine (consumer_group.py) calls them when the group
epoch moves past the assignment epoch.

- ``uniform`` (Kafka's UniformAssignor): every member subscribed to a topic may get its partitions;
  members keep what they own as long as that stays balanced (sticky), the rest go to the least
  loaded subscribed member, and partitions move from the most to the least loaded member until no
  two members that could trade differ by more than one. Among equally good moves the choice may
  differ from Kafka's (the outcome is as balanced and as sticky, not byte-identical).
- ``range`` (Kafka's RangeAssignor): per topic, the members subscribed to it, sorted by member id,
  get consecutive ranges, the first ``partitions % members`` one partition more, so topics with
  equal partition counts are co-partitioned. Left out: its stickiness across rebalances.

Racks (KIP-881's rules, as Kafka's client-side assignors apply them): with ``racks`` (member id
-> rack) and ``partition_racks`` (topic -> the racks of each partition's broker group), rack
matching is used when some member has a rack, some partition is on such a rack, and not every
partition is on the same racks. Then ``range`` first gives each member, in member order and within
its range quota, the unassigned partitions on its rack, then fills the quotas in order as without
racks; ``uniform`` keeps a member's partitions only where its rack matches, places each partition
on the least loaded member of its rack that still has room, the rest as without racks, and
balances preferring moves that land a partition on its rack. Balance always wins over racks.
Left out: range's co-partitioned rack matching across topics of equal partition counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

#: topic name -> partitions
Assignment = dict[str, frozenset[int]]
#: topic name -> the racks of each of its partitions
PartitionRacks = Mapping[str, Sequence[frozenset[str]]]

UNIFORM = "uniform"
RANGE = "range"
ASSIGNORS = (UNIFORM, RANGE)


def assign(
    name: str,
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    current: Mapping[str, Assignment],
    racks: Mapping[str, str | None] | None = None,
    partition_racks: PartitionRacks | None = None,
) -> dict[str, Assignment]:
    """The target assignment of every member (member id -> assignment) by the named assignor."""
    if name == RANGE:
        return range_assign(subscriptions, partitions, racks, partition_racks)
    return uniform_assign(subscriptions, partitions, current, racks, partition_racks)


class _Racks:
    """Which partitions are on a member's rack, when rack matching is in use."""

    def __init__(
        self,
        members: Sequence[str],
        topics: Sequence[str],
        partitions: Mapping[str, int],
        racks: Mapping[str, str | None] | None,
        partition_racks: PartitionRacks | None,
    ) -> None:
        self.member_rack = {m: r for m in members if racks and (r := racks.get(m))}
        self.of: dict[tuple[str, int], frozenset[str]] = {}
        pr = partition_racks or {}
        for t in topics:
            known = pr.get(t, ())
            for p in range(partitions.get(t, 0)):
                self.of[(t, p)] = known[p] if p < len(known) else frozenset()
        consumer_racks = set(self.member_rack.values())
        all_partition_racks = set().union(*self.of.values()) if self.of else set()
        self.used = bool(consumer_racks & all_partition_racks) and any(
            rs != all_partition_racks for rs in self.of.values()
        )

    def match(self, member: str, tp: tuple[str, int]) -> bool:
        """Kafka's racksMatch: a member without a rack matches every partition."""
        rack = self.member_rack.get(member)
        return rack is None or rack in self.of.get(tp, frozenset())

    def strict(self, member: str, tp: tuple[str, int]) -> bool:
        """The member has a rack and the partition is on it."""
        rack = self.member_rack.get(member)
        return rack is not None and rack in self.of.get(tp, frozenset())


def range_assign(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    racks: Mapping[str, str | None] | None = None,
    partition_racks: PartitionRacks | None = None,
) -> dict[str, Assignment]:
    out: dict[str, dict[str, set[int]]] = {m: {} for m in subscriptions}
    for topic in sorted({t for subs in subscriptions.values() for t in subs}):
        n = partitions.get(topic, 0)
        members = sorted(m for m, subs in subscriptions.items() if topic in subs)
        if not n or not members:
            continue
        quota, extra = divmod(n, len(members))
        rack = _Racks(members, [topic], partitions, racks, partition_racks)
        if not rack.used:
            start = 0
            for i, member in enumerate(members):
                size = quota + (1 if i < extra else 0)
                if size:
                    out[member][topic] = set(range(start, start + size))
                start += size
            continue
        _ranges_by_rack(topic, n, members, rack, out)
    return {m: {t: frozenset(ps) for t, ps in a.items()} for m, a in out.items()}


def _ranges_by_rack(
    topic: str, n: int, members: list[str], rack: _Racks, out: dict[str, dict[str, set[int]]]
) -> None:
    """Kafka's rack-matching range pass: each member in order takes the unassigned partitions on
    its rack up to its quota, then the quotas are filled in order with what is left."""
    quota, extra = divmod(n, len(members))
    unassigned = list(range(n))
    counts = dict.fromkeys(members, 0)
    for match in (True, False):
        for member in members:
            room = max(0, quota + (1 if extra > 0 else 0) - counts[member])
            picked = [p for p in unassigned if not match or rack.match(member, (topic, p))][:room]
            if not picked:
                continue
            out[member].setdefault(topic, set()).update(picked)
            counts[member] += len(picked)
            if counts[member] > quota:
                extra -= 1
            unassigned = [p for p in unassigned if p not in picked]


def uniform_assign(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    current: Mapping[str, Assignment],
    racks: Mapping[str, str | None] | None = None,
    partition_racks: PartitionRacks | None = None,
) -> dict[str, Assignment]:
    members = sorted(subscriptions)
    owned: dict[str, list[tuple[str, int]]] = {m: [] for m in members}
    if not members:
        return {}
    topics = sorted({t for s in subscriptions.values() for t in s})
    everything = [(t, p) for t in topics for p in range(partitions.get(t, 0))]
    rack = _Racks(members, topics, partitions, racks, partition_racks)
    # the most any member may keep: a balanced share of the partitions it could get
    cap = -(-len(everything) // len(members)) if everything else 0
    taken: set[tuple[str, int]] = set()
    for m in members:
        for topic, parts in sorted(current.get(m, {}).items()):
            if topic not in subscriptions[m]:
                continue
            for p in sorted(parts):
                tp = (topic, p)
                if (
                    p < partitions.get(topic, 0)
                    and tp not in taken
                    and len(owned[m]) < cap
                    and (not rack.used or rack.match(m, tp))
                ):
                    owned[m].append(tp)
                    taken.add(tp)
    for tp in everything:
        if tp in taken:
            continue
        eligible = [m for m in members if tp[0] in subscriptions[m]]
        if rack.used:
            local = [m for m in eligible if rack.strict(m, tp) and len(owned[m]) < cap]
            eligible = local or eligible
        if eligible:
            owner = min(eligible, key=lambda m: (len(owned[m]), m))
            owned[owner].append(tp)
    _balance(members, subscriptions, owned, rack)
    return {m: _grouped(tps) for m, tps in owned.items()}


def _balance(
    members: list[str],
    subscriptions: Mapping[str, frozenset[str]],
    owned: dict[str, list[tuple[str, int]]],
    rack: _Racks,
) -> None:
    """Move partitions from loaded to lighter members that may take them, while that evens out;
    with racks, a move that puts a partition on its rack (or keeps it off no rack) goes first."""
    moved = True
    while moved:
        moved = False
        for heavy in sorted(members, key=lambda m: (-len(owned[m]), m)):
            moves = []
            for tp in reversed(owned[heavy]):
                lighter = [
                    m for m in members if tp[0] in subscriptions[m] and len(owned[m]) + 1 < len(owned[heavy])
                ]
                if lighter:
                    target = min(lighter, key=lambda m: (len(owned[m]), m))
                    if not rack.used:
                        moves.append((tp, target))
                        break
                    on_rack = [m for m in lighter if rack.strict(m, tp)]
                    gain = int(bool(on_rack)) - int(rack.strict(heavy, tp))
                    moves.append((tp, min(on_rack, key=lambda m: (len(owned[m]), m)) if on_rack else target))
                    if gain > 0:
                        moves = [moves[-1]]
                        break
            if moves:
                tp, target = _best(moves, heavy, rack)
                owned[heavy].remove(tp)
                owned[target].append(tp)
                moved = True
                break


def _best(moves: list[tuple[tuple[str, int], str]], heavy: str, rack: _Racks) -> tuple[tuple[str, int], str]:
    """The move that loses the fewest rack matches (the first among equals)."""
    return max(moves, key=lambda mv: rack.strict(mv[1], mv[0]) - rack.strict(heavy, mv[0]))


def _grouped(tps: list[tuple[str, int]]) -> Assignment:
    out: dict[str, set[int]] = {}
    for t, p in tps:
        out.setdefault(t, set()).add(p)
    return {t: frozenset(ps) for t, ps in out.items()}
