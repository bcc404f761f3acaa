"""Subscriptions and tag filtering (RocketMQ's ``FilterAPI`` and ``SubscriptionData``).

A TAG expression is ``*`` or ``TagA || TagB``. The broker filters a consume queue by the tag hash
(Java ``String.hashCode``) and the client re-checks the exact tag, since hashes can collide.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.remoting.message import java_string_hash

SUB_ALL = "*"


class SubscriptionError(ValueError):
    """An expression the broker cannot evaluate."""


@dataclass(slots=True)
class SubscriptionData:
    topic: str
    sub_string: str = SUB_ALL
    tags_set: list[str] = field(default_factory=list)
    code_set: list[int] = field(default_factory=list)
    sub_version: int = 0
    expression_type: str = "TAG"

    @property
    def matches_all(self) -> bool:
        return not self.code_set

    def tag_codes(self) -> frozenset[int] | None:
        """The hash set a pull filters by; None for ``*``."""
        return None if self.matches_all else frozenset(self.code_set)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SubscriptionData:
        sub = cls(
            topic=str(obj.get("topic", "")),
            sub_string=str(obj.get("subString") or SUB_ALL),
            tags_set=[str(t) for t in obj.get("tagsSet") or []],
            code_set=[int(c) for c in obj.get("codeSet") or []],
            sub_version=int(obj.get("subVersion") or 0),
            expression_type=str(obj.get("expressionType") or "TAG"),
        )
        if sub.expression_type == "TAG" and sub.tags_set and not sub.code_set:
            sub.code_set = [java_string_hash(t) for t in sub.tags_set]
        return sub

    def to_json(self) -> dict[str, Any]:
        return {
            "classFilterMode": False,
            "codeSet": self.code_set,
            "expressionType": self.expression_type,
            "subString": self.sub_string,
            "subVersion": self.sub_version,
            "tagsSet": self.tags_set,
            "topic": self.topic,
        }


def build_subscription(
    topic: str, expression: str | None, expression_type: str | None = "TAG", sub_version: int = 0
) -> SubscriptionData:
    """Parse an expression (``FilterAPI.build``); raise SubscriptionError for what is unsupported."""
    etype = (expression_type or "TAG").upper()
    if etype != "TAG":
        raise SubscriptionError("The broker does not support consumer to filter message by " + etype)
    expr = (expression or "").strip()
    sub = SubscriptionData(topic=topic, sub_version=sub_version)
    if not expr or expr == SUB_ALL:
        sub.sub_string = SUB_ALL
        return sub
    sub.sub_string = expr
    for tag in expr.split("||"):
        tag = tag.strip()
        if tag:
            sub.tags_set.append(tag)
            sub.code_set.append(java_string_hash(tag))
    if not sub.tags_set:
        raise SubscriptionError(f"subscription expression has no tag: {expr!r}")
    return sub
