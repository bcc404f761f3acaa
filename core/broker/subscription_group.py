"""Per-group consumer settings (RocketMQ's ``SubscriptionGroupManager``), persisted to
``config/subscriptionGroup.json``; the admin requests over them are served by
``processors/subscription_group.py``.

A group's config says how many retry queues it has (``retryQueueNums``) and how often a message
is re-delivered before it goes to the dead-letter topic (``retryMaxTimes``, 16 by default).
Groups are created on first use when ``autoCreateSubscriptionGroup`` is on (the default), as
the Java broker does. Left out: forbidden tables, retry policies beyond storing them, and
enforcing ``consumeEnable`` on pulls.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ferrymq.core.persist import read_json, write_json_atomic
from ferrymq.core.remoting.route import DataVersion

log = logging.getLogger("ferrymq.groups")

GROUP_MAX_LENGTH = 255
_VALID_GROUP = re.compile(r"^[%|a-zA-Z0-9_-]+$")


def validate_group(group: str) -> str | None:
    """None if ``group`` is a legal name, else the reason (``TopicValidator.validateGroup``)."""
    if not group:
        return "the specified group is blank"
    if len(group) > GROUP_MAX_LENGTH:
        return f"the specified group is longer than group max length {GROUP_MAX_LENGTH}."
    if not _VALID_GROUP.match(group):
        return f"the specified group[{group}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    return None


class SubscriptionGroupConfig(BaseModel):
    """``SubscriptionGroupConfig``; unknown fields (5.x retry policies, ...) are kept as sent."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    group_name: str = Field(alias="groupName", min_length=1)
    consume_enable: bool = Field(True, alias="consumeEnable")
    consume_from_min_enable: bool = Field(True, alias="consumeFromMinEnable")
    consume_broadcast_enable: bool = Field(True, alias="consumeBroadcastEnable")
    consume_message_orderly: bool = Field(False, alias="consumeMessageOrderly")
    retry_queue_nums: int = Field(1, alias="retryQueueNums", ge=0, le=1024)
    retry_max_times: int = Field(16, alias="retryMaxTimes", ge=-1)
    broker_id: int = Field(0, alias="brokerId")
    which_broker_when_consume_slowly: int = Field(1, alias="whichBrokerWhenConsumeSlowly")
    notify_consumer_ids_changed_enable: bool = Field(True, alias="notifyConsumerIdsChangedEnable")
    group_sys_flag: int = Field(0, alias="groupSysFlag")
    consume_timeout_minute: int = Field(15, alias="consumeTimeoutMinute")
    attributes: dict[str, str] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class SubscriptionGroupManager:
    def __init__(self, path: Path, auto_create: bool = True) -> None:
        self.path = path
        self.auto_create = auto_create
        self.groups: dict[str, SubscriptionGroupConfig] = {}
        self.data_version = DataVersion()
        data = read_json(path)
        if isinstance(data, dict):
            for name, obj in (data.get("subscriptionGroupTable") or {}).items():
                try:
                    self.groups[name] = SubscriptionGroupConfig.model_validate(obj)
                except ValidationError as exc:
                    log.error("%s: group %s ignored: %s", path, name, exc)
            self.data_version = DataVersion.from_json(data.get("dataVersion"))

    def find(self, group: str) -> SubscriptionGroupConfig | None:
        """The group's config; created with defaults on first use when auto-creation is on."""
        cfg = self.groups.get(group)
        if cfg is None and self.auto_create and validate_group(group) is None:
            cfg = SubscriptionGroupConfig.model_validate({"groupName": group})
            self.update(cfg)
        return cfg

    def update(self, cfg: SubscriptionGroupConfig) -> None:
        old = self.groups.get(cfg.group_name)
        self.groups[cfg.group_name] = cfg
        if old != cfg:
            log.info("subscription group %s: %s", "updated" if old else "created", cfg.to_json())
            self.data_version.next_version()
            self.persist()

    def delete(self, group: str) -> bool:
        if self.groups.pop(group, None) is None:
            return False
        log.info("subscription group deleted: %s", group)
        self.data_version.next_version()
        self.persist()
        return True

    def assign(self, groups: dict[str, SubscriptionGroupConfig], data_version: DataVersion) -> None:
        """Replace every group by ``groups`` at ``data_version`` (a slave copying its master's)."""
        self.groups = dict(groups)
        self.data_version = DataVersion(
            data_version.timestamp, data_version.counter, data_version.state_version
        )
        log.info("subscription groups copied from the master: %d groups", len(groups))
        self.persist()

    def to_json(self) -> dict[str, Any]:
        return {
            "dataVersion": self.data_version.to_json(),
            "forbiddenTable": {},
            "subscriptionGroupTable": {n: g.to_json() for n, g in self.groups.items()},
        }

    def persist(self) -> None:
        write_json_atomic(self.path, self.to_json())
