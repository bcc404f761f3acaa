"""UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201),
DELETE_SUBSCRIPTIONGROUP (207) and GET_SUBSCRIPTIONGROUP_CONFIG (352): the admin requests over
the per-group settings kept by ``core/broker/subscription_group.py``.

As ``AdminBrokerProcessor``'s: a config body that does not validate is INVALID_PARAMETER, a
deleted group may take its committed offsets with it (``cleanOffset``). Left out: the 5.x list
variant (225). A slave refuses group changes (SYSTEM_ERROR, ``slave_sync.refuse_on_slave``);
groups it creates on first use are fine.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ferrymq.core.broker.slave_sync import refuse_on_slave
from ferrymq.core.broker.subscription_group import SubscriptionGroupConfig, validate_group
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import loads_fastjson
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker

log = logging.getLogger("ferrymq.groups")


class SubscriptionGroupProcessor:
    """The admin codes over :class:`SubscriptionGroupManager` (``AdminBrokerProcessor``'s)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.groups = broker.subscription_groups

    def update(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        refused = refuse_on_slave(self.broker, cmd)
        if refused is not None:
            return refused
        try:
            obj = loads_fastjson(bytes(cmd.body))
            if not isinstance(obj, dict):
                raise ValueError("the body is not a JSON object")
            cfg = SubscriptionGroupConfig.model_validate(obj)
        except (ValueError, ValidationError) as exc:
            log.warning(
                "bad subscription group config from %s: %s", conn.peer, exc, extra={"peer": conn.peer}
            )
            return cmd.response(ResponseCode.INVALID_PARAMETER, f"bad subscription group config: {exc}")
        reason = validate_group(cfg.group_name)
        if reason:
            return cmd.response(ResponseCode.INVALID_PARAMETER, reason)
        log.info(
            "subscription group %s updated by %s",
            cfg.group_name,
            conn.peer,
            extra={"peer": conn.peer, "group": cfg.group_name},
        )
        self.groups.update(cfg)
        return cmd.response(ResponseCode.SUCCESS)

    def get_all(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        return cmd.response(body=json.dumps(self.groups.to_json()).encode())

    def get_one(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        cfg = self.groups.find(cmd.ext_fields.get("group") or "")
        if cfg is None:
            return cmd.response(ResponseCode.SUBSCRIPTION_GROUP_NOT_EXIST, "No group in this broker")
        return cmd.response(body=json.dumps(cfg.to_json()).encode())

    def delete(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        refused = refuse_on_slave(self.broker, cmd)
        if refused is not None:
            return refused
        group = cmd.ext_fields.get("groupName")
        if not group:
            return cmd.response(ResponseCode.SYSTEM_ERROR, "the custom field <groupName> is null")
        log.info(
            "subscription group %s deleted by %s", group, conn.peer, extra={"peer": conn.peer, "group": group}
        )
        self.groups.delete(group)
        if (cmd.ext_fields.get("cleanOffset") or "").lower() == "true":
            self.broker.offsets.delete_group(group)
        return cmd.response(ResponseCode.SUCCESS)
