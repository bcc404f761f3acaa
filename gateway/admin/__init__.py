"""Admin REST API (FastAPI), Prometheus metrics and the web console, served from the broker's
process. ``AdminLauncher`` binds its port at start and loads ``AdminServer`` (FastAPI, uvicorn,
the routers) in the background; the ``ferrymq`` command hands it the Kafka frontend through
``add_frontend`` (a ``core.broker.frontend_view.FrontendView``), so this package never imports
gateway/kafka. Importing this package loads neither FastAPI nor uvicorn."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ferrymq.gateway.admin.launcher import AdminLauncher

if TYPE_CHECKING:
    from ferrymq.gateway.admin.server import AdminServer

__all__ = ["AdminLauncher", "AdminServer"]


def __getattr__(name: str) -> object:
    if name == "AdminServer":
        from ferrymq.gateway.admin.server import AdminServer

        return AdminServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
