"""Client quotas set with AlterClientQuotas (or the admin API), persisted in ``<store>/config/quotas.json``.

Validation is Kafka's (ClientQuotaControlManager): entity types ``user`` and ``client-id`` only, each at most
once; keys ``producer_byte_rate`` / ``consumer_byte_rate`` (whole numbers) and ``request_percentage``, never
negative. The file is written atomically and fsynced before the request is answered; rates start empty.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ferrymq.core.auth.quotas import CLIENT_ID, ENTITY_TYPES, FETCH, KINDS, PRODUCE, ClientQuotas, Entity
from ferrymq.core.persist import read_json, write_json_atomic

#: match types of DescribeClientQuotas' components
MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY = 0, 1, 2


class InvalidQuota(ValueError):
    """A bad entity or quota value (Kafka answers INVALID_REQUEST with this message)."""


def check_entity(parts: Iterable[tuple[str, str | None]]) -> Entity:
    seen: dict[str, str | None] = {}
    for etype, name in parts:
        if etype not in ENTITY_TYPES:
            raise InvalidQuota(f"Unhandled client quota entity type: {etype}")
        if etype in seen:
            raise InvalidQuota(f"Duplicate {etype} entity in the request")
        if name == "":
            raise InvalidQuota(f"Invalid empty {etype} name")
        seen[etype] = name
    if not seen:
        raise InvalidQuota("Invalid empty client quota entity")
    return tuple(sorted(seen.items()))


def check_value(key: str, value: float | None) -> float | None:
    if key not in KINDS:
        raise InvalidQuota(f"Unknown quota key: {key}")
    if value is None:
        return None
    if value < 0:
        raise InvalidQuota(f"Illegal value {value} for {key}: quotas cannot be negative")
    if key in (PRODUCE, FETCH) and value != int(value):
        raise InvalidQuota(f"Illegal value {value} for {key}: it must be a whole number of bytes per second")
    return float(value)


def matches(ent: Entity, components: list[tuple[str, int, str | None]], strict: bool) -> bool:
    """DescribeClientQuotas' filter: each component matches its type exactly, by default or any;
    ``strict``: the entity has no other types."""
    names = dict(ent)
    for etype, match, name in components:
        if etype not in names:
            return False
        if match == MATCH_EXACT and names[etype] != name:
            return False
        if match == MATCH_DEFAULT and names[etype] is not None:
            return False
    return not strict or len(names) == len(components)


class QuotaStore:
    def __init__(self, path: Path, quotas: ClientQuotas) -> None:
        self.path = path
        self.quotas = quotas
        data = read_json(path) or {}
        quotas.set_all(
            {
                tuple(sorted((p["type"], p["name"]) for p in q["entity"])): dict(q["values"])
                for q in data.get("quotas", [])
            }
        )

    def describe(
        self, components: list[tuple[str, int, str | None]], strict: bool
    ) -> dict[Entity, dict[str, float]]:
        for etype, match, _ in components:
            if etype not in ENTITY_TYPES:
                raise InvalidQuota(f"Custom entity type '{etype}' not supported")
            if match not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_ANY):
                raise InvalidQuota(f"Unknown match type {match}")
        if len({c[0] for c in components}) != len(components):
            raise InvalidQuota("Duplicate entity type in the filter")
        return {e: v for e, v in self.quotas.entries().items() if matches(e, components, strict)}

    def alter(
        self, changes: list[tuple[Entity, dict[str, float | None]]], validate_only: bool = False
    ) -> None:
        """Apply every change (already checked) and persist once."""
        if validate_only or not changes:
            return
        for ent, ops in changes:
            self.quotas.alter(ent, ops)
        self.save()

    def save(self) -> None:
        write_json_atomic(
            self.path,
            {
                "quotas": [
                    {"entity": [{"type": t, "name": n} for t, n in ent], "values": values}
                    for ent, values in sorted(self.quotas.entries().items(), key=lambda kv: repr(kv[0]))
                ]
            },
        )


__all__ = ["CLIENT_ID", "InvalidQuota", "QuotaStore", "check_entity", "check_value", "matches"]
