"""The admin token guards every admin path (the OpenAPI document walked path by path, plus
/docs, /openapi.json, /metrics and the console) unless opened by adminOpenPaths; a browser gets a
Basic challenge and may give the token as its password; adminTlsEnable serves HTTPS."""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from pathlib import Path
from typing import Any

import httpx

from ferrymq.core.broker.broker import Broker
from ferrymq.core.config import BrokerConfig
from ferrymq.core.remoting.route import BrokerData
from ferrymq.gateway.admin.server import AdminServer
from tests.test_admin_replication import FixedRoutes
from tests.tls_certs import make_certs

TOKEN = "t0ken"
OK = {"Authorization": f"Bearer {TOKEN}"}


async def admin(tmp_path: Path, **conf: Any) -> tuple[Broker, AdminServer]:
    values = {"listenPort": 0, "listenHost": "127.0.0.1", "storePathRootDir": tmp_path / "store", **conf}
    broker = Broker(BrokerConfig.build(values))
    bd = BrokerData("DefaultCluster", "broker-a", {0: "127.0.0.1:1"})
    server = AdminServer(broker, FixedRoutes(bd), "127.0.0.1", 0, token=TOKEN)  # type: ignore[arg-type]
    await server.start()
    return broker, server


def test_every_path_needs_the_token(tmp_path: Path) -> None:
    async def main() -> None:
        _, server = await admin(tmp_path)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as h:
                doc = (await h.get("/openapi.json", headers=OK)).json()
                checked = 0
                for path, ops in doc["paths"].items():
                    url = re.sub(r"\{[^}]+\}", "x", path)
                    for method in ops:
                        r = await h.request(method.upper(), url)
                        assert r.status_code == 401, (method, path, r.status_code)
                        checked += 1
                assert checked >= 16
                for path in ("/docs", "/openapi.json", "/metrics", "/", "/static/console.js", "/healthz"):
                    r = await h.get(path)
                    assert r.status_code == 401, path
                    assert r.headers["www-authenticate"].startswith("Basic")
                basic = base64.b64encode(f"admin:{TOKEN}".encode()).decode()
                assert (await h.get("/", headers={"Authorization": f"Basic {basic}"})).status_code == 200
                assert (await h.get("/metrics", headers=OK)).status_code == 200
                wrong = base64.b64encode(b"admin:nope").decode()
                assert (await h.get("/", headers={"Authorization": f"Basic {wrong}"})).status_code == 401
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_open_paths_are_served_without_the_token(tmp_path: Path) -> None:
    async def main() -> None:
        _, server = await admin(tmp_path, adminOpenPaths="/healthz, /metrics")
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as h:
                assert (await h.get("/healthz")).status_code == 200
                assert (await h.get("/metrics")).status_code == 200
                assert (await h.get("/metricsx")).status_code == 401  # a prefix is a path segment
                assert (await h.get("/api/topics")).status_code == 401
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_admin_over_https(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    conf = {"adminTlsEnable": True, "tls.server.certPath": certs.cert, "tls.server.keyPath": certs.key}

    async def main() -> None:
        _, server = await admin(tmp_path, **conf)
        try:
            async with httpx.AsyncClient(
                base_url=f"https://127.0.0.1:{server.port}",
                verify=ssl.create_default_context(cafile=certs.ca),
            ) as h:
                assert (await h.get("/api/topics", headers=OK)).status_code == 200
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as h:
                try:
                    r = await h.get("/api/topics", headers=OK)
                except httpx.HTTPError:
                    pass
                else:
                    assert r.status_code == 400  # uvicorn answers a plaintext request on a TLS port so
        finally:
            await server.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
