"""A consumer's subscription to one topic (RocketMQ's ``SubscriptionData`` and ``FilterAPI``).

The one model both sides share: the client builds it from ``subscribe(topic, "TagA || TagB")``
and sends it in heartbeats; the broker reads it from heartbeats or builds it from a pull's
``subscription`` header and filters a consume queue by its tag hashes (Java ``String.hashCode``).
The client re-checks the exact tag (:meth:`SubscriptionData.matches`), since hashes can collide.
An SQL92 subscription (``expression_type`` "SQL92") carries its expression in ``sub_string``;
the broker compiles and evaluates it (core/filter, core/broker/property_filter.py), the client
never re-filters it. Class filters are not supported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ferrymq.core.remoting.message import java_string_hash

SUB_ALL = "*"
TAG = "TAG"
SQL92 = "SQL92"


class SubscriptionError(ValueError):
    """An expression the broker cannot evaluate."""


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(slots=True)
class SubscriptionData:
    """One topic's subscription; ``sub_version`` defaults to now (ms), as Java's does."""

    topic: str
    sub_string: str = SUB_ALL
    tags_set: list[str] = field(default_factory=list)
    code_set: list[int] = field(default_factory=list)
    sub_version: int = field(default_factory=_now_ms)
    expression_type: str = "TAG"

    @classmethod
    def build(cls, topic: str, expression: str | None, sub_version: int | None = None) -> SubscriptionData:
        """``FilterAPI.buildSubscriptionData`` for TAG: ``*``, blank or no tag at all match all."""
        version = _now_ms() if sub_version is None else sub_version
        expr = (expression or "").strip()
        sub = cls(topic, SUB_ALL, sub_version=version)
        if not expr or expr == SUB_ALL:
            return sub
        for tag in expr.split("||"):
            tag = tag.strip()
            if tag and tag not in sub.tags_set:
                sub.tags_set.append(tag)
                sub.code_set.append(java_string_hash(tag))
        if sub.tags_set:
            sub.sub_string = expr
        return sub

    @classmethod
    def parse(
        cls, topic: str, expression: str | None, expression_type: str | None = "TAG", sub_version: int = 0
    ) -> SubscriptionData:
        """The broker's read of a pull's expression; SubscriptionError for what it cannot filter by."""
        etype = expression_type or TAG
        if etype == SQL92:
            return cls.sql92(topic, expression or "", sub_version)
        if etype != TAG:
            raise SubscriptionError("The broker does not support consumer to filter message by " + etype)
        sub = cls.build(topic, expression, sub_version)
        expr = (expression or "").strip()
        if sub.matches_all and expr and expr != SUB_ALL:
            raise SubscriptionError(f"subscription expression has no tag: {expr!r}")
        return sub

    @classmethod
    def sql92(cls, topic: str, expression: str, sub_version: int | None = None) -> SubscriptionData:
        """``MessageSelector.bySql(expression)``: no tags, the expression as the sub string."""
        version = _now_ms() if sub_version is None else sub_version
        return cls(topic, expression, sub_version=version, expression_type=SQL92)

    @property
    def is_tag_type(self) -> bool:
        """``ExpressionType.isTagType``: TAG, or no type at all."""
        return not self.expression_type or self.expression_type == TAG

    @property
    def matches_all(self) -> bool:
        return not self.code_set

    def tag_codes(self) -> frozenset[int] | None:
        """The hash set a pull filters by (broker side); None for ``*``."""
        return None if self.matches_all else frozenset(self.code_set)

    def matches(self, tags: str | None) -> bool:
        """The client's exact re-check of a pulled message (``PullAPIWrapper.processPullResult``);
        SQL92 results are the broker's to get right and are not re-checked."""
        return not self.is_tag_type or not self.tags_set or (tags is not None and tags in self.tags_set)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SubscriptionData:
        """An entry of a heartbeat's ``subscriptionDataSet``; codes are derived from tags if absent."""
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
            "codeSet": list(self.code_set),
            "expressionType": self.expression_type,
            "subString": self.sub_string,
            "subVersion": self.sub_version,
            "tagsSet": list(self.tags_set),
            "topic": self.topic,
        }
