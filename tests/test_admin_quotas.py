"""Client quotas through the admin REST API: set, list, remove, checked as AlterClientQuotas checks them,
token-guarded, and in the OpenAPI document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from ferrymq.core.auth.quotas import entity
from tests.test_admin_security import OK, admin


def test_quotas_over_rest(tmp_path: Path) -> None:
    async def main() -> None:
        broker, server = await admin(tmp_path)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", headers=OK) as h:
                assert "/api/quotas" in (await h.get("/openapi.json")).json()["paths"]
                assert (
                    await h.get("/api/quotas", headers={"Authorization": "Bearer nope"})
                ).status_code == 401
                r = await h.put(
                    "/api/quotas", params={"user": "alice"}, json={"values": {"producer_byte_rate": 1e5}}
                )
                assert r.status_code == 200, r.text
                assert r.json() == {"entity": {"user": "alice"}, "values": {"producer_byte_rate": 100000.0}}
                r = await h.put(
                    "/api/quotas",
                    params={"user": "<default>", "client_id": "c1"},
                    json={"values": {"request_percentage": 25}},
                )
                assert r.json()["entity"] == {"user": None, "client-id": "c1"}
                assert broker.security.quotas.resolve("request_percentage", "bob", "c1") == (
                    "bob",
                    "c1",
                    25.0,
                )
                listed = (await h.get("/api/quotas")).json()
                assert len(listed) == 2
                bad = [
                    ({"user": "a"}, {"values": {"producer_byte_rate": -1}}),
                    ({"user": "a"}, {"values": {"nope": 1}}),
                    ({}, {"values": {"producer_byte_rate": 1}}),
                    ({"user": ""}, {"values": {"producer_byte_rate": 1}}),
                ]
                for params, body in bad:
                    assert (await h.put("/api/quotas", params=params, json=body)).status_code == 422, params
                assert (
                    await h.delete("/api/quotas", params={"user": "alice", "key": "nope"})
                ).status_code == 404
                assert (await h.delete("/api/quotas", params={"user": "alice"})).status_code == 204
                assert entity(user="alice") not in broker.security.quotas.entries()
                assert (await h.delete("/api/quotas", params={"user": "alice"})).status_code == 404
        finally:
            await server.stop()

    asyncio.run(main())
