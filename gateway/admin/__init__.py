"""Admin REST API (FastAPI), Prometheus metrics and the web console, served from the broker's
process. ``AdminServer`` runs it; the Kafka frontend plugs its groups in through
``AdminServer.add_group_provider`` (see ``groups.GroupProvider``)."""

from ferrymq.gateway.admin.groups import GroupProvider, GroupState, Member
from ferrymq.gateway.admin.routes_source import LocalRoutes, RemoteRoutes
from ferrymq.gateway.admin.server import AdminServer

__all__ = ["AdminServer", "GroupProvider", "GroupState", "LocalRoutes", "Member", "RemoteRoutes"]
