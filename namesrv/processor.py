"""The name server's routing table: request code to handler, in one place.

Handlers live in ``broker_registration`` (what brokers send) and ``route_queries`` (what clients
and admin tools ask). Any other code is answered REQUEST_CODE_NOT_SUPPORTED by the dispatcher,
as a Java name server answers it; that includes the KV-config, write-permission, per-cluster
topic-list and config requests a Java name server also serves. A missing or malformed header
field is answered INVALID_PARAMETER with a remark naming the field.
"""

from __future__ import annotations

from ferrymq.core.remoting.codes import RequestCode
from ferrymq.core.remoting.transport import Handler, RequestDispatcher
from ferrymq.namesrv.broker_registration import BrokerRegistrationProcessor
from ferrymq.namesrv.route_info import RouteInfoManager
from ferrymq.namesrv.route_queries import RouteQueryProcessor


def build_dispatcher(routes: RouteInfoManager) -> RequestDispatcher:
    """A dispatcher answering every request the name server serves."""
    brokers = BrokerRegistrationProcessor(routes)
    queries = RouteQueryProcessor(routes)
    table: dict[RequestCode, Handler] = {
        RequestCode.REGISTER_BROKER: brokers.register_broker,
        RequestCode.UNREGISTER_BROKER: brokers.unregister_broker,
        RequestCode.GET_ROUTEINFO_BY_TOPIC: queries.get_route_info_by_topic,
        RequestCode.GET_BROKER_CLUSTER_INFO: queries.get_broker_cluster_info,
        RequestCode.GET_ALL_TOPIC_LIST_FROM_NAMESERVER: queries.get_all_topic_list,
        RequestCode.DELETE_TOPIC_IN_NAMESRV: queries.delete_topic_in_namesrv,
    }
    return RequestDispatcher(table)
