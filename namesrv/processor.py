"""Wires the name server's request families onto one RequestDispatcher.

Served: REGISTER_BROKER (103) and UNREGISTER_BROKER (104) in ``broker_registration``;
GET_ROUTEINFO_BY_TOPIC (105), GET_BROKER_CLUSTER_INFO (106), GET_ALL_TOPIC_LIST_FROM_NAMESERVER
(206) and DELETE_TOPIC_IN_NAMESRV (216) in ``route_queries``. Any other code is answered
REQUEST_CODE_NOT_SUPPORTED by the dispatcher, as a Java name server answers it; that includes
the KV-config, write-permission, per-cluster topic-list and config requests a Java name server
also serves.
"""

from __future__ import annotations

from ferrymq.core.remoting.transport import RequestDispatcher
from ferrymq.namesrv.broker_registration import BrokerRegistrationProcessor
from ferrymq.namesrv.route_info import RouteInfoManager
from ferrymq.namesrv.route_queries import RouteQueryProcessor


def build_dispatcher(routes: RouteInfoManager) -> RequestDispatcher:
    """A dispatcher answering every request family the name server serves."""
    dispatcher = RequestDispatcher()
    BrokerRegistrationProcessor(routes).register(dispatcher)
    RouteQueryProcessor(routes).register(dispatcher)
    return dispatcher
