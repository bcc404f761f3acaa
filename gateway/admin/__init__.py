"""Admin REST API (FastAPI), Prometheus metrics and the web console, served from the broker's
process. ``AdminServer`` runs it; the ``ferrymq`` command hands it the Kafka frontend through
``AdminServer.add_frontend`` (a ``core.broker.frontend_view.FrontendView``), so this package
never imports gateway/kafka."""

from ferrymq.gateway.admin.server import AdminServer

__all__ = ["AdminServer"]
