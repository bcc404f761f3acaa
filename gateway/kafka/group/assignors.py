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
"""

from __future__ import annotations

from collections.abc import Mapping

#: topic name -> partitions
Assignment = dict[str, frozenset[int]]

UNIFORM = "uniform"
RANGE = "range"
ASSIGNORS = (UNIFORM, RANGE)


def assign(
    name: str,
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    current: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    """The target assignment of every member (member id -> assignment) by the named assignor."""
    if name == RANGE:
        return range_assign(subscriptions, partitions)
    return uniform_assign(subscriptions, partitions, current)


def range_assign(
    subscriptions: Mapping[str, frozenset[str]], partitions: Mapping[str, int]
) -> dict[str, Assignment]:
    out: dict[str, dict[str, set[int]]] = {m: {} for m in subscriptions}
    for topic in sorted({t for subs in subscriptions.values() for t in subs}):
        n = partitions.get(topic, 0)
        members = sorted(m for m, subs in subscriptions.items() if topic in subs)
        if not n or not members:
            continue
        quota, extra = divmod(n, len(members))
        start = 0
        for i, member in enumerate(members):
            size = quota + (1 if i < extra else 0)
            if size:
                out[member][topic] = set(range(start, start + size))
            start += size
    return {m: {t: frozenset(ps) for t, ps in a.items()} for m, a in out.items()}


def uniform_assign(
    subscriptions: Mapping[str, frozenset[str]],
    partitions: Mapping[str, int],
    current: Mapping[str, Assignment],
) -> dict[str, Assignment]:
    members = sorted(subscriptions)
    owned: dict[str, list[tuple[str, int]]] = {m: [] for m in members}
    if not members:
        return {}
    everything = sorted(
        (t, p) for t in {t for s in subscriptions.values() for t in s} for p in range(partitions.get(t, 0))
    )
    # the most any member may keep: a balanced share of the partitions it could get
    cap = -(-len(everything) // len(members)) if everything else 0
    taken: set[tuple[str, int]] = set()
    for m in members:
        for topic, parts in sorted(current.get(m, {}).items()):
            if topic not in subscriptions[m]:
                continue
            for p in sorted(parts):
                tp = (topic, p)
                if p < partitions.get(topic, 0) and tp not in taken and len(owned[m]) < cap:
                    owned[m].append(tp)
                    taken.add(tp)
    for tp in everything:
        if tp in taken:
            continue
        eligible = [m for m in members if tp[0] in subscriptions[m]]
        if eligible:
            owner = min(eligible, key=lambda m: (len(owned[m]), m))
            owned[owner].append(tp)
    _balance(members, subscriptions, owned)
    return {m: _grouped(tps) for m, tps in owned.items()}


def _balance(
    members: list[str], subscriptions: Mapping[str, frozenset[str]], owned: dict[str, list[tuple[str, int]]]
) -> None:
    """Move partitions from loaded to lighter members that may take them, while that evens out."""
    moved = True
    while moved:
        moved = False
        for heavy in sorted(members, key=lambda m: (-len(owned[m]), m)):
            for tp in reversed(owned[heavy]):
                lighter = [
                    m for m in members if tp[0] in subscriptions[m] and len(owned[m]) + 1 < len(owned[heavy])
                ]
                if lighter:
                    target = min(lighter, key=lambda m: (len(owned[m]), m))
                    owned[heavy].remove(tp)
                    owned[target].append(tp)
                    moved = True
                    break
            if moved:
                break


def _grouped(tps: list[tuple[str, int]]) -> Assignment:
    out: dict[str, set[int]] = {}
    for t, p in tps:
        out.setdefault(t, set()).add(p)
    return {t: frozenset(ps) for t, ps in out.items()}
