"""The ferrymq name server: RocketMQ-compatible routing (request codes 103-106, 206, 216).

Imports only the protocol package ``ferrymq.core.remoting``; nothing else from ``core``.
"""

from ferrymq.namesrv.route_info import RouteInfoManager
from ferrymq.namesrv.server import NameServer

__all__ = ["NameServer", "RouteInfoManager"]
