"""ACL bindings made with Kafka's CreateAcls/DeleteAcls (or the admin API), persisted, fed to the Authorizer.

The bindings are the Authorizer's source ``"kafka"``; the file (``<store>/config/acls.json``) is written
atomically and fsynced on every change, before the request is answered.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ferrymq.core.auth.acl import (
    AclBinding,
    AclFilter,
    Authorizer,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)
from ferrymq.core.persist import read_json, write_json_atomic

SOURCE = "kafka"


class AclStore:
    def __init__(self, path: Path, authorizer: Authorizer) -> None:
        self.path = path
        self.authorizer = authorizer
        data = read_json(path) or {}
        self._bindings: list[AclBinding] = [
            AclBinding(
                ResourceType(a["resourceType"]),
                a["resourceName"],
                PatternType(a["patternType"]),
                a["principal"],
                a["host"],
                Operation(a["operation"]),
                Permission(a["permission"]),
            )
            for a in data.get("acls", [])
        ]
        authorizer.set_bindings(SOURCE, self._bindings)

    def bindings(self) -> list[AclBinding]:
        return list(self._bindings)

    def describe(self, flt: AclFilter) -> list[AclBinding]:
        return [b for b in self._bindings if flt.matches(b)]

    def create(self, new: Iterable[AclBinding]) -> None:
        known = set(self._bindings)
        for b in new:
            if b not in known:
                known.add(b)
                self._bindings.append(b)
        self._changed()

    def delete(self, filters: list[AclFilter]) -> list[list[AclBinding]]:
        """The bindings each filter removed (one binding may be reported by several filters)."""
        removed = [[b for b in self._bindings if f.matches(b)] for f in filters]
        gone = {b for group in removed for b in group}
        if gone:
            self._bindings = [b for b in self._bindings if b not in gone]
            self._changed()
        return removed

    def _changed(self) -> None:
        write_json_atomic(
            self.path,
            {
                "acls": [
                    {
                        "resourceType": int(b.resource_type),
                        "resourceName": b.resource_name,
                        "patternType": int(b.pattern_type),
                        "principal": b.principal,
                        "host": b.host,
                        "operation": int(b.operation),
                        "permission": int(b.permission),
                    }
                    for b in self._bindings
                ]
            },
        )
        self.authorizer.set_bindings(SOURCE, self._bindings)
