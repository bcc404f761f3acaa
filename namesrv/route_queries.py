"""Client- and admin-facing route requests: GET_ROUTEINFO_BY_TOPIC (105), GET_BROKER_CLUSTER_INFO
(106), GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206) and DELETE_TOPIC_IN_NAMESRV (216).

Follows ``ClientRequestProcessor`` and ``DefaultRequestProcessor`` of RocketMQ 5.x. Route bodies
are always standard JSON with quoted keys, whatever the client's ``version`` or
``acceptStandardJsonOnly``: every Java (4.x and 5.x), Go and JS client parses that form, while the
bare-integer-key form is only a fastjson default kept by Java for old clients.

Left out: ``orderTopicConf`` (needs the KV-config table), acting-master route rewriting, the
``waitSecondsForService`` start-up grace, and ``enableAllTopicList=false``.
"""

from __future__ import annotations

import logging

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.headers import guarded, req_str
from ferrymq.core.remoting.transport import RemotingConnection
from ferrymq.namesrv.route_info import RouteInfoManager

log = logging.getLogger("ferrymq.namesrv")


def topic_not_exist_remark(topic: str) -> str:
    return f"No topic route info in name server for the topic: {topic}"


class RouteQueryProcessor:
    """Answers route, cluster and topic-list queries from one RouteInfoManager."""

    def __init__(self, routes: RouteInfoManager) -> None:
        self.routes = routes

    @guarded
    def get_route_info_by_topic(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        topic = req_str(cmd.ext_fields, "topic", ResponseCode.INVALID_PARAMETER)
        route = self.routes.pick_topic_route(topic)
        if route is None:
            return cmd.response(ResponseCode.TOPIC_NOT_EXIST, topic_not_exist_remark(topic))
        return cmd.response(ResponseCode.SUCCESS, body=route.to_json_bytes())

    @guarded
    def get_broker_cluster_info(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        return cmd.response(ResponseCode.SUCCESS, body=self.routes.cluster_info().to_json_bytes())

    @guarded
    def get_all_topic_list(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        return cmd.response(ResponseCode.SUCCESS, body=self.routes.all_topics().to_json_bytes())

    @guarded
    def delete_topic_in_namesrv(self, cmd: RemotingCommand, conn: RemotingConnection) -> RemotingCommand:
        topic = req_str(cmd.ext_fields, "topic", ResponseCode.INVALID_PARAMETER)
        cluster_name = cmd.ext_fields.get("clusterName")
        removed = self.routes.delete_topic(topic, cluster_name or None)
        log.info(
            "topic %s deleted%s by %s%s",
            topic,
            f" from cluster {cluster_name}" if cluster_name else "",
            conn.peer,
            "" if removed else " (was not routed)",
        )
        return cmd.response(ResponseCode.SUCCESS)
