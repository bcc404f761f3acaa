"""The admin REST API of a real ``ferrymq serve`` (and a standalone ``ferrymq broker``), over
HTTP with httpx: every path, auth on and off, and the 404/409/422 answers.

Messages and offsets are also checked over the RocketMQ protocol, the way a client sees them: a
message sent through the API must be pullable, a reset offset must be what a consumer queries.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ferrymq.cli.testing import FerryBroker, FerryNameServer, FerryServer
from ferrymq.core.remoting.codes import RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import RemotingConnection, connect
from tests.remoting_helpers import heartbeat, pull

TOKEN = "s3cret-token"


@pytest.fixture
def http(server: FerryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.admin_url, timeout=10) as client:
        yield client


def eventually(check, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    """Poll an outside observable (e.g. a name server's route) until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


async def remoting(server: FerryServer) -> RemotingConnection:
    host, port = server.broker_addr.split(":")
    return await connect(host, int(port))


async def commit_offset(conn: RemotingConnection, group: str, topic: str, queue: int, offset: int) -> None:
    resp = await conn.invoke(
        RemotingCommand(
            code=RequestCode.UPDATE_CONSUMER_OFFSET,
            ext_fields={
                "consumerGroup": group,
                "topic": topic,
                "queueId": str(queue),
                "commitOffset": str(offset),
            },
        )
    )
    assert resp.code == ResponseCode.SUCCESS, resp.remark


async def query_offset(conn: RemotingConnection, group: str, topic: str, queue: int) -> int:
    resp = await conn.invoke(
        RemotingCommand(
            code=RequestCode.QUERY_CONSUMER_OFFSET,
            ext_fields={"consumerGroup": group, "topic": topic, "queueId": str(queue)},
        )
    )
    assert resp.code == ResponseCode.SUCCESS, resp.remark
    return int(resp.ext_fields["offset"])


def namesrv_knows(addr: str, topic: str) -> bool:
    """Does the name server at ``addr`` have a route for ``topic`` (GET_ROUTEINFO_BY_TOPIC)?"""

    async def ask() -> bool:
        host, port = addr.split(":")
        conn = await connect(host, int(port))
        try:
            resp = await conn.invoke(
                RemotingCommand(code=RequestCode.GET_ROUTEINFO_BY_TOPIC, ext_fields={"topic": topic})
            )
            return resp.code == ResponseCode.SUCCESS
        finally:
            conn.close()

    return asyncio.run(ask())


# ---- health, cluster, console --------------------------------------------------------------


def test_health_ready_and_cluster(server: FerryServer, http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    ready = http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "registered": True, "store_writable": True}

    cluster = http.get("/api/cluster").json()
    assert cluster["name_servers"] == [{"addr": server.namesrv_addr, "reachable": True}]
    assert cluster["clusters"] == {"DefaultCluster": ["broker-a"]}
    (broker,) = cluster["brokers"]
    assert broker["addr"] == server.broker_addr
    assert broker["role"] == "MASTER" and broker["local"] and broker["reachable"]
    assert broker["version"].startswith("ferrymq ")
    assert broker["uptime_seconds"] >= 0
    assert broker["disk_used_bytes"] > 0
    assert 0 < broker["disk_used_ratio"] < 1


def test_console_and_openapi_are_served(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and "ferrymq console" in page.text
    assert http.get("/static/console.js").status_code == 200
    spec = http.get("/openapi.json").json()
    for path in (
        "/api/cluster",
        "/api/topics",
        "/api/topics/{topic}",
        "/api/groups",
        "/api/groups/{group}",
        "/api/groups/{group}/reset-offset",
        "/api/messages",
        "/api/messages/{msg_id}",
        "/api/topics/{topic}/queues/{queue_id}/messages",
        "/api/topics/{topic}/messages",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in spec["paths"], path
    assert http.get("/docs").status_code == 200


# ---- topics --------------------------------------------------------------------------------


def test_topic_lifecycle(server: FerryServer, http: httpx.Client) -> None:
    created = http.post("/api/topics", json={"name": "Lifecycle", "queues": 3, "perm": 6})
    assert created.status_code == 201, created.text
    t = created.json()
    assert (t["name"], t["kind"], t["read_queues"], t["write_queues"], t["perm_text"]) == (
        "Lifecycle",
        "normal",
        3,
        3,
        "RW",
    )
    assert [q["queue_id"] for q in t["queues"]] == [0, 1, 2]
    assert all(q["min_offset"] == q["max_offset"] == 0 and q["last_store_time"] is None for q in t["queues"])
    assert "Lifecycle" in [x["name"] for x in http.get("/api/topics").json()]
    assert http.post("/api/topics", json={"name": "Lifecycle"}).status_code == 409

    # the name server learns the topic from the broker's re-registration
    route = eventually(lambda: http.get("/api/topics/Lifecycle").json()["route"])
    assert route["queue_datas"] == [
        {"broker_name": "broker-a", "read_queues": 3, "write_queues": 3, "perm": 6}
    ]
    assert route["broker_datas"][0]["addrs"] == {"0": server.broker_addr}

    patched = http.patch("/api/topics/Lifecycle", json={"write_queues": 5, "perm": 4})
    assert patched.status_code == 200
    assert (patched.json()["read_queues"], patched.json()["write_queues"], patched.json()["perm_text"]) == (
        3,
        5,
        "R",
    )
    assert len(patched.json()["queues"]) == 5

    assert namesrv_knows(server.namesrv_addr, "Lifecycle")
    assert http.delete("/api/topics/Lifecycle").status_code == 204
    assert http.get("/api/topics/Lifecycle").status_code == 404
    assert "Lifecycle" not in [x["name"] for x in http.get("/api/topics").json()]
    assert not namesrv_knows(server.namesrv_addr, "Lifecycle")


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/topics", {"name": "bad name!"}, 422),
        ("POST", "/api/topics", {"name": "TooMany", "queues": 0}, 422),
        ("POST", "/api/topics", {"name": "TooMany", "queues": 1025}, 422),
        ("POST", "/api/topics", {"name": "BadPerm", "perm": 3}, 422),
        ("POST", "/api/topics", {"name": "Extra", "colour": "red"}, 422),
        ("POST", "/api/topics", {"name": "TBW102"}, 409),
        ("GET", "/api/topics/NoSuchTopic", None, 404),
        ("PATCH", "/api/topics/NoSuchTopic", {"queues": 2}, 404),
        ("PATCH", "/api/topics/TBW102", {"queues": 0}, 422),
        ("DELETE", "/api/topics/NoSuchTopic", None, 404),
        ("DELETE", "/api/topics/TBW102", None, 409),
        ("DELETE", "/api/topics/DefaultCluster", None, 409),
        ("GET", "/api/topics?kind=weird", None, 422),
        ("GET", "/api/nothing-here", None, 404),
    ],
)
def test_topic_errors(http: httpx.Client, method: str, path: str, body: object, status: int) -> None:
    resp = http.request(method, path, json=body)
    assert resp.status_code == status, resp.text
    assert "detail" in resp.json()


def test_bad_json_is_422_not_500(http: httpx.Client) -> None:
    resp = http.post("/api/topics", content=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 422


# ---- messages ------------------------------------------------------------------------------


def test_send_then_find_by_id_key_and_queue(server: FerryServer, http: httpx.Client) -> None:
    assert http.post("/api/topics", json={"name": "Msgs", "queues": 2}).status_code == 201
    sent = http.post(
        "/api/topics/Msgs/messages",
        json={
            "body": "héllo admin",
            "tags": "TagA",
            "keys": ["order-1", "cust-9"],
            "properties": {"p": "v"},
            "queue_id": 1,
        },
    )
    assert sent.status_code == 201, sent.text
    s = sent.json()
    assert (s["topic"], s["queue_id"], s["queue_offset"]) == ("Msgs", 1, 0)

    by_id = http.get(f"/api/messages/{s['msg_id']}").json()
    assert by_id["body"] == "héllo admin" and by_id["body_encoding"] == "text"
    assert by_id["tags"] == "TagA" and by_id["keys"] == ["order-1", "cust-9"]
    assert by_id["properties"]["p"] == "v"
    assert by_id["unique_key"] == s["unique_key"]
    assert (by_id["queue_id"], by_id["queue_offset"]) == (1, 0)
    assert http.get(f"/api/messages/{s['unique_key']}").json()["msg_id"] == s["msg_id"]
    assert http.get(f"/api/messages/{s['unique_key']}", params={"topic": "Msgs"}).status_code == 200

    found = http.get("/api/messages", params={"topic": "Msgs", "key": "cust-9"}).json()
    assert [m["msg_id"] for m in found] == [s["msg_id"]]
    assert http.get("/api/messages", params={"topic": "Msgs", "key": "nobody"}).json() == []
    newest = http.get("/api/messages", params={"topic": "Msgs"}).json()
    assert [m["msg_id"] for m in newest] == [s["msg_id"]]

    binary = bytes(range(256))
    import base64

    b = http.post(
        "/api/topics/Msgs/messages",
        json={"body": base64.b64encode(binary).decode(), "body_encoding": "base64", "queue_id": 1},
    ).json()
    page = http.get("/api/topics/Msgs/queues/1/messages", params={"offset": 0, "count": 10}).json()
    assert (page["min_offset"], page["max_offset"], page["next_offset"]) == (0, 2, 2)
    assert [m["queue_offset"] for m in page["messages"]] == [0, 1]
    assert page["messages"][1]["msg_id"] == b["msg_id"]
    assert page["messages"][1]["body_encoding"] == "base64"
    assert base64.b64decode(page["messages"][1]["body"]) == binary
    tail = http.get("/api/topics/Msgs/queues/1/messages", params={"count": 1}).json()
    assert [m["queue_offset"] for m in tail["messages"]] == [1]

    async def pulled() -> list[bytes]:
        conn = await remoting(server)
        try:
            resp = await conn.invoke(pull("Msgs", 1, 0))
            assert resp.code == ResponseCode.SUCCESS
            return [m.body for m in decode_stored_messages(resp.body)]
        finally:
            conn.close()

    assert asyncio.run(pulled()) == ["héllo admin".encode(), binary]


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/api/topics/NoSuchTopic/messages", {"body": "x"}, 404),
        ("POST", "/api/topics/Msgs/messages", {"body": "x", "properties": {"KEYS": "k"}}, 422),
        ("POST", "/api/topics/Msgs/messages", {"body": "!!", "body_encoding": "base64"}, 422),
        ("POST", "/api/topics/Msgs/messages", {"body": "x", "queue_id": 7}, 422),
        ("POST", "/api/topics/Msgs/messages", {"body": "x", "keys": ["a b"]}, 422),
        ("POST", "/api/topics/Msgs/messages", {}, 422),
        ("GET", "/api/messages/0000000000000000000000000000FFFF", None, 404),
        ("GET", "/api/messages/not-an-id", None, 404),
        ("GET", "/api/messages?topic=NoSuchTopic&key=k", None, 404),
        ("GET", "/api/messages?key=k", None, 422),
        ("GET", "/api/messages?topic=Msgs&max=0", None, 422),
        ("GET", "/api/topics/NoSuchTopic/queues/0/messages", None, 404),
        ("GET", "/api/topics/Msgs/queues/9/messages", None, 404),
        ("GET", "/api/topics/Msgs/queues/0/messages?count=0", None, 422),
        ("GET", "/api/topics/Msgs/queues/0/messages?offset=-1", None, 422),
    ],
)
def test_message_errors(http: httpx.Client, method: str, path: str, body: object, status: int) -> None:
    if http.get("/api/topics/Msgs").status_code == 404:
        http.post("/api/topics", json={"name": "Msgs", "queues": 2})
    resp = http.request(method, path, json=body)
    assert resp.status_code == status, resp.text


def test_send_to_read_only_topic_is_a_conflict(http: httpx.Client) -> None:
    assert http.post("/api/topics", json={"name": "ReadOnly", "queues": 1, "perm": 4}).status_code == 201
    assert http.post("/api/topics/ReadOnly/messages", json={"body": "x"}).status_code == 409


# ---- groups --------------------------------------------------------------------------------


def test_group_lag_members_and_reset(server: FerryServer, http: httpx.Client) -> None:
    assert http.post("/api/topics", json={"name": "Billing", "queues": 2}).status_code == 201
    for i in range(5):
        assert (
            http.post("/api/topics/Billing/messages", json={"body": f"m{i}", "queue_id": i % 2}).status_code
            == 201
        )
    stored = int(time.time() * 1000)

    async def scenario() -> None:
        conn = await remoting(server)
        try:
            await commit_offset(conn, "billing-g", "Billing", 0, 1)  # queue 0 holds 3: lag 2
            await commit_offset(conn, "billing-g", "Billing", 1, 2)  # queue 1 holds 2: lag 0
            async with httpx.AsyncClient(base_url=server.admin_url) as h:
                groups = {g["name"]: g for g in (await h.get("/api/groups")).json()}
                g = groups["billing-g"]
                assert (g["protocol"], g["state"], g["member_count"], g["total_lag"]) == (
                    "native",
                    "Offline",
                    0,
                    2,
                )
                detail = (await h.get("/api/groups/billing-g")).json()
                assert [
                    (q["queue_id"], q["broker_offset"], q["committed_offset"], q["lag"])
                    for q in detail["queues"]
                ] == [
                    (0, 3, 1, 2),
                    (1, 2, 2, 0),
                ]
                assert (await h.get("/api/groups/no-such-group")).status_code == 404

                # a live member: the reset is refused unless forced
                assert (
                    await conn.invoke(heartbeat("cid-1", "billing-g", "Billing"))
                ).code == ResponseCode.SUCCESS
                live = (await h.get("/api/groups/billing-g")).json()
                assert live["state"] == "Online" and live["member_count"] == 1
                assert live["members"][0]["client_id"] == "cid-1"
                assert {"topic": "Billing", "expression": "*"} in live["subscriptions"]
                refused = await h.post("/api/groups/billing-g/reset-offset", json={"to": "latest"})
                assert refused.status_code == 409
                forced = await h.post(
                    "/api/groups/billing-g/reset-offset",
                    json={"to": "latest", "topic": "Billing", "force": True},
                )
                assert forced.status_code == 200
                assert {(o["queue_id"], o["old"], o["new"]) for o in forced.json()["offsets"]} == {
                    (0, 1, 3),
                    (1, 2, 2),
                }
                assert await query_offset(conn, "billing-g", "Billing", 0) == 3
                assert (await h.get("/api/groups/billing-g")).json()["total_lag"] == 0

                unregister = RemotingCommand(
                    code=RequestCode.UNREGISTER_CLIENT,
                    ext_fields={"clientID": "cid-1", "consumerGroup": "billing-g"},
                )
                assert (await conn.invoke(unregister)).code == ResponseCode.SUCCESS
                earliest = await h.post(
                    "/api/groups/billing-g/reset-offset", json={"to": "earliest", "topic": "Billing"}
                )
                assert earliest.status_code == 200, earliest.text
                assert await query_offset(conn, "billing-g", "Billing", 0) == 0
                assert (await h.get("/api/groups/billing-g")).json()["total_lag"] == 5

                # a time: the first message stored at or after it (none after the future: the end)
                future = await h.post("/api/groups/billing-g/reset-offset", json={"to": stored + 60_000})
                assert {(o["queue_id"], o["new"]) for o in future.json()["offsets"]} == {(0, 3), (1, 2)}
                past = await h.post("/api/groups/billing-g/reset-offset", json={"to": stored - 60_000})
                assert {(o["queue_id"], o["new"]) for o in past.json()["offsets"]} == {(0, 0), (1, 0)}
                assert await query_offset(conn, "billing-g", "Billing", 1) == 0

                for bad in ({"to": "yesterday"}, {"to": -5}, {}, {"to": "latest", "topic": "NoSuchTopic"}):
                    r = await h.post("/api/groups/billing-g/reset-offset", json=bad)
                    assert r.status_code == (404 if "topic" in bad else 422), (bad, r.text)
                r = await h.post("/api/groups/no-such-group/reset-offset", json={"to": "latest"})
                assert r.status_code == 404
        finally:
            conn.close()

    asyncio.run(scenario())


# ---- metrics -------------------------------------------------------------------------------


def test_metrics(server: FerryServer, http: httpx.Client) -> None:
    assert http.post("/api/topics", json={"name": "Metered", "queues": 1}).status_code == 201
    for _ in range(3):
        assert http.post("/api/topics/Metered/messages", json={"body": "0123456789"}).status_code == 201

    async def consume() -> None:
        conn = await remoting(server)
        try:
            assert (await conn.invoke(pull("Metered", 0, 0))).code == ResponseCode.SUCCESS
            await commit_offset(conn, "metered-g", "Metered", 0, 1)
        finally:
            conn.close()

    asyncio.run(consume())
    text = http.get("/metrics")
    assert text.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text.text)
        for s in fam.samples
    }
    assert samples[("ferrymq_messages_in_total", (("topic", "Metered"),))] == 3
    assert samples[("ferrymq_messages_out_total", (("topic", "Metered"),))] == 3
    assert samples[("ferrymq_bytes_in_total", (("topic", "Metered"),))] > 30
    send = (("code", "310"), ("name", "SEND_MESSAGE_V2"), ("protocol", "remoting"))
    assert samples[("ferrymq_request_duration_seconds_count", send)] >= 3
    assert samples[("ferrymq_request_duration_seconds_bucket", (*send[:1], ("le", "+Inf"), *send[1:]))] >= 3
    assert samples[("ferrymq_consumer_group_lag", (("group", "metered-g"), ("protocol", "native")))] == 2
    assert samples[("ferrymq_store_disk_used_bytes", ())] > 0


# ---- auth ----------------------------------------------------------------------------------


def test_token_required_on_every_api_call(tmp_path: Path) -> None:
    with FerryServer(tmp_path / "auth", extra_args=["--admin-token", TOKEN]) as srv:
        with httpx.Client(base_url=srv.admin_url) as h:
            for method, path in (("GET", "/api/topics"), ("GET", "/api/cluster"), ("POST", "/api/topics")):
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
                    r = h.request(method, path, headers=headers, json={"name": "Sec"})
                    assert r.status_code == 401, (method, path, headers)
                    assert r.content == b""
            ok = {"Authorization": f"Bearer {TOKEN}"}
            assert h.get("/api/topics", headers=ok).status_code == 200
            assert h.post("/api/topics", headers=ok, json={"name": "Sec"}).status_code == 201
            # not under /api: probes, metrics and the console page need it too (adminOpenPaths opens them)
            for path in ("/healthz", "/readyz", "/metrics", "/"):
                assert h.get(path).status_code == 401, path
                assert h.get(path, headers=ok).status_code == 200, path
        assert "bad or missing token" in srv.log_tail(200)


def test_read_open_mode_needs_the_token_only_for_changes(tmp_path: Path) -> None:
    conf = f"adminToken={TOKEN}\nadminReadOpen=true\n"
    with FerryServer(tmp_path / "ro", conf) as srv, httpx.Client(base_url=srv.admin_url) as h:
        assert h.get("/api/topics").status_code == 200
        assert h.get("/api/cluster").status_code == 200
        assert h.post("/api/topics", json={"name": "Ro"}).status_code == 401
        assert h.delete("/api/topics/Ro").status_code == 401
        ok = {"Authorization": f"Bearer {TOKEN}"}
        assert h.post("/api/topics", headers=ok, json={"name": "Ro"}).status_code == 201
        assert h.post("/api/topics/Ro/messages", json={"body": "x"}).status_code == 401


# ---- a standalone broker: the cluster comes from name servers over remoting -----------------


def test_standalone_broker_asks_name_servers_over_remoting(tmp_path: Path) -> None:
    ns = FerryNameServer(tmp_path / "ns")
    try:
        ns_addr = ns.addr
        broker = FerryBroker(tmp_path / "broker", ns_addr, "broker-x", admin=True)
        try:
            m = re.search(r"broker broker-x (\S+),(?: ha \S+,)? admin (\S+), data ", broker.ready_line)
            assert m, broker.ready_line
            with httpx.Client(base_url=f"http://{m[2]}") as h:
                cluster = h.get("/api/cluster").json()
                assert cluster["name_servers"] == [{"addr": ns_addr, "reachable": True}]
                assert cluster["clusters"] == {"DefaultCluster": ["broker-x"]}
                assert [b["addr"] for b in cluster["brokers"]] == [m[1]]
                assert h.post("/api/topics", json={"name": "Remote", "queues": 2}).status_code == 201
                route = eventually(lambda: h.get("/api/topics/Remote").json()["route"])
                assert route["broker_datas"][0]["broker_name"] == "broker-x"
                assert namesrv_knows(ns_addr, "Remote")
                assert h.delete("/api/topics/Remote").status_code == 204
                assert not namesrv_knows(ns_addr, "Remote")
                assert h.get("/readyz").json()["ready"] is True
        finally:
            broker.stop()
    finally:
        ns.stop()


def test_members_that_subscribe_differently_are_reported(server: FerryServer, http: httpx.Client) -> None:
    assert http.post("/api/topics", json={"name": "Mixed1", "queues": 1}).status_code == 201
    assert http.post("/api/topics", json={"name": "Mixed2", "queues": 1}).status_code == 201

    async def scenario() -> None:
        a, b = await remoting(server), await remoting(server)
        try:
            assert (await a.invoke(heartbeat("cid-a", "mixed-g", "Mixed1"))).code == ResponseCode.SUCCESS
            async with httpx.AsyncClient(base_url=server.admin_url) as h:
                one = (await h.get("/api/groups/mixed-g")).json()
                assert one["consistent_subscriptions"] is True
                assert one["members"][0]["subscriptions"] == {"Mixed1": "*"}
                # a second member of the same group subscribes to another topic
                assert (await b.invoke(heartbeat("cid-b", "mixed-g", "Mixed2"))).code == ResponseCode.SUCCESS
                two = (await h.get("/api/groups/mixed-g")).json()
                assert two["consistent_subscriptions"] is False
                assert {m["client_id"]: m["subscriptions"] for m in two["members"]} == {
                    "cid-a": {"Mixed1": "*"},
                    "cid-b": {"Mixed2": "*"},
                }
        finally:
            a.close()
            b.close()

    asyncio.run(scenario())
