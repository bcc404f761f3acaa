"""``ferrymq admin ...``: mqadmin's everyday commands under readable names, over the REST API.

    ferrymq admin clusters
    ferrymq admin topics list|create|update|delete|route|status ...
    ferrymq admin groups list|progress|reset ...
    ferrymq admin messages id|key|queue ...
    ferrymq admin send TOPIC BODY ...

The server is ``--server`` (or env FERRYMQ_ADMIN_URL; default http://127.0.0.1:8080), the token
env FERRYMQ_ADMIN_TOKEN. Tables for people, ``--json`` for scripts (the API's JSON as is). On
any error: exit status 1 (2 for usage) and one line on stderr saying why.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NoReturn

DEFAULT_SERVER = "http://127.0.0.1:8080"
PERMS = {"rw": 6, "r": 4, "w": 2, "6": 6, "4": 4, "2": 2}


class AdminError(Exception):
    """A failed command: the message is the one line printed."""


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


# ---- HTTP ------------------------------------------------------------------------------------


class Api:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        if "://" not in self.server:
            self.server = "http://" + self.server
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None, **query: Any) -> Any:
        q = {k: v for k, v in query.items() if v is not None}
        url = self.server + path + ("?" + urllib.parse.urlencode(q) if q else "")
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise AdminError(_http_error(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdminError(f"cannot reach {self.server}: {reason}") from None
        return json.loads(raw) if raw else None


def _http_error(exc: urllib.error.HTTPError) -> str:
    if exc.code == 401:
        return "401 unauthorized: set FERRYMQ_ADMIN_TOKEN to the broker's admin token"
    try:
        detail = json.loads(exc.read()).get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # validation errors: field and message of each
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}"
            for d in detail
            if isinstance(d, dict)
        )
    return f"{exc.code} {detail or exc.reason}"


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


# ---- output ----------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    return str(v).replace("\n", " ")


def _time(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def _short(text: str, n: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= n else text[: n - 1] + "…"


def parse_time(text: str) -> int:
    """Milliseconds since the epoch, or an ISO date/time (local time unless it has a zone)."""
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise AdminError(f"not a time: {text!r} (ms since the epoch, or 2024-05-01T12:00:00)") from None


# ---- commands --------------------------------------------------------------------------------

Out = Callable[[Any], str]


def replication_text(r: dict[str, Any] | None) -> str | None:
    """A broker's replication in a cell: a master's in-sync slaves and worst lag, a slave's link."""
    if not r:
        return None
    if r["broker_role"] == "SLAVE":
        state = "up" if r["master_connected"] else "down"
        return f"master {r['master_ha_addr'] or '?'} {state}"
    slaves = r["slaves"]
    if not slaves:
        return "no slaves"
    lag = max(s["lag_bytes"] for s in slaves)
    msgs = max((s.get("lag_messages") or 0) for s in slaves)
    epoch = "" if r.get("epoch") is None else f"epoch {r['epoch']}, "
    return f"{epoch}in sync {r['in_sync_slaves']}/{len(slaves)}, lag {_bytes(lag)}, {msgs} msgs"


def cmd_clusters(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    def show(c: dict[str, Any]) -> str:
        ns = table(
            ["NAME SERVER", "STATUS"],
            [[n["addr"], "ok" if n["reachable"] else "unreachable"] for n in c["name_servers"]],
        )
        brokers = table(
            [
                "CLUSTER",
                "BROKER",
                "ID",
                "ADDRESS",
                "ROLE",
                "REPLICATION",
                "VERSION",
                "UPTIME",
                "DISK",
                "DISK USE",
            ],
            [
                [
                    b["cluster"],
                    b["broker_name"],
                    b["broker_id"],
                    b["addr"],
                    (b.get("replication") or {}).get("broker_role") or b["role"],
                    replication_text(b.get("replication")),
                    b["version"],
                    f"{b['uptime_seconds']:.0f}s" if b["uptime_seconds"] is not None else None,
                    _bytes(b["disk_used_bytes"]),
                    f"{b['disk_used_ratio'] * 100:.1f}%" if b["disk_used_ratio"] is not None else None,
                ]
                for b in c["brokers"]
            ],
        )
        return ns + "\n\n" + brokers

    return api.call("GET", "/api/cluster"), show


def _topic_rows(topics: list[dict[str, Any]]) -> str:
    return table(
        ["TOPIC", "KIND", "READ", "WRITE", "PERM", "MESSAGES"],
        [
            [t["name"], t["kind"], t["read_queues"], t["write_queues"], t["perm_text"], t["messages"]]
            for t in topics
        ],
    )


def cmd_topics_list(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    topics = api.call("GET", "/api/topics")
    if not a.all:
        topics = [t for t in topics if t["kind"] == "normal"]
    return topics, _topic_rows


def _topic_body(a: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for field in ("queues", "read_queues", "write_queues"):
        if getattr(a, field) is not None:
            body[field] = getattr(a, field)
    if a.perm is not None:
        body["perm"] = PERMS[a.perm.lower()]
    if a.order is not None:
        body["order"] = a.order
    return body


def _topic_line(verb: str) -> Out:
    return lambda t: (
        f"{verb} topic {t['name']}: {t['read_queues']} read / {t['write_queues']} write queues, "
        f"perm {t['perm_text']}"
    )


def cmd_topics_create(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    return api.call("POST", "/api/topics", {"name": a.topic, **_topic_body(a)}), _topic_line("created")


def cmd_topics_update(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    body = _topic_body(a)
    if not body:
        raise AdminError("nothing to update: give --queues, --read-queues, --write-queues, --perm or --order")
    return api.call("PATCH", f"/api/topics/{_q(a.topic)}", body), _topic_line("updated")


def cmd_topics_delete(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    api.call("DELETE", f"/api/topics/{_q(a.topic)}")
    return {"deleted": a.topic}, lambda _: f"deleted topic {a.topic}"


def cmd_topics_route(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    t = api.call("GET", f"/api/topics/{_q(a.topic)}")

    def show(route: dict[str, Any] | None) -> str:
        if route is None:
            return f"topic {a.topic} is not registered with the name servers (yet)"
        queues = {q["broker_name"]: q for q in route["queue_datas"]}
        rows = []
        for b in route["broker_datas"]:
            q = queues.get(b["broker_name"], {})
            addrs = ", ".join(f"{i}={addr}" for i, addr in b["addrs"].items())
            rows.append(
                [
                    b["cluster"],
                    b["broker_name"],
                    addrs,
                    q.get("read_queues"),
                    q.get("write_queues"),
                    q.get("perm"),
                ]
            )
        return table(["CLUSTER", "BROKER", "ADDRESSES", "READ", "WRITE", "PERM"], rows)

    return t["route"], show


def cmd_topics_status(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    t = api.call("GET", f"/api/topics/{_q(a.topic)}")

    def show(t: dict[str, Any]) -> str:
        return table(
            ["QUEUE", "MIN OFFSET", "MAX OFFSET", "MESSAGES", "LAST STORED"],
            [
                [q["queue_id"], q["min_offset"], q["max_offset"], q["messages"], _time(q["last_store_time"])]
                for q in t["queues"]
            ],
        )

    return t, show


def cmd_groups_list(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    def show(groups: list[dict[str, Any]]) -> str:
        return table(
            ["GROUP", "PROTOCOL", "STATE", "MEMBERS", "TOTAL LAG", "TOPICS"],
            [
                [
                    g["name"],
                    g["protocol"],
                    g["state"],
                    g["member_count"],
                    g["total_lag"],
                    ",".join(g["topics"]),
                ]
                for g in groups
            ],
        )

    return api.call("GET", "/api/groups"), show


def cmd_groups_progress(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    def show(g: dict[str, Any]) -> str:
        rows = table(
            ["TOPIC", "QUEUE", "BROKER OFFSET", "CONSUMER OFFSET", "LAG", "LAST STORED"],
            [
                [
                    q["topic"],
                    q["queue_id"],
                    q["broker_offset"],
                    q["committed_offset"],
                    q["lag"],
                    _time(q["last_store_time"]),
                ]
                for q in g["queues"]
            ],
        )
        members = ", ".join(f"{m['client_id']}@{m['address']}" for m in g["members"]) or "none"
        return (
            f"group {g['name']} ({g['protocol']}, {g['state']}), members: {members}\n\n{rows}\n\n"
            f"total lag: {g['total_lag']}"
        )

    return api.call("GET", f"/api/groups/{_q(a.group)}"), show


def cmd_groups_reset(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    to: str | int = a.to if a.to in ("earliest", "latest") else parse_time(a.to)
    body: dict[str, Any] = {"to": to, "force": a.force}
    if a.topic:
        body["topic"] = a.topic

    def show(r: dict[str, Any]) -> str:
        rows = table(
            ["TOPIC", "QUEUE", "OLD OFFSET", "NEW OFFSET"],
            [[o["topic"], o["queue_id"], o["old"], o["new"]] for o in r["offsets"]],
        )
        return f"{rows}\n\nreset {len(r['offsets'])} queue(s) of group {r['group']}"

    return api.call("POST", f"/api/groups/{_q(a.group)}/reset-offset", body), show


def _message(m: dict[str, Any]) -> str:
    fields = [
        ("msg id", m["msg_id"]),
        ("unique key", m["unique_key"]),
        ("topic", m["topic"]),
        ("queue", m["queue_id"]),
        ("queue offset", m["queue_offset"]),
        ("tags", m["tags"]),
        ("keys", " ".join(m["keys"]) or None),
        ("born", f"{_time(m['born_timestamp'])} from {m['born_host']}"),
        ("stored", f"{_time(m['store_timestamp'])} on {m['store_host']}"),
        ("reconsume times", m["reconsume_times"]),
        ("properties", ", ".join(f"{k}={v}" for k, v in m["properties"].items())),
        (f"body ({m['body_size']} bytes, {m['body_encoding']})", ""),
    ]
    width = max(len(k) for k, _ in fields)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}".rstrip() for k, v in fields) + "\n" + m["body"]


def _message_rows(messages: list[dict[str, Any]]) -> str:
    return table(
        ["MSG ID", "QUEUE", "OFFSET", "STORED", "TAGS", "KEYS", "BODY"],
        [
            [
                m["msg_id"],
                m["queue_id"],
                m["queue_offset"],
                _time(m["store_timestamp"]),
                m["tags"],
                " ".join(m["keys"]),
                _short(m["body"]) if m["body_encoding"] == "text" else f"({m['body_size']} bytes, binary)",
            ]
            for m in messages
        ],
    )


def cmd_messages_id(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    return api.call("GET", f"/api/messages/{_q(a.msg_id)}", topic=a.topic), _message


def cmd_messages_key(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    begin = parse_time(a.begin) if a.begin else None
    end = parse_time(a.end) if a.end else None
    found = api.call("GET", "/api/messages", topic=a.topic, key=a.key, begin=begin, end=end, max=a.max)
    if not found:
        raise AdminError(f"no message of topic {a.topic} has key {a.key!r}")
    return found, _message_rows


def cmd_messages_queue(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    r = api.call(
        "GET", f"/api/topics/{_q(a.topic)}/queues/{a.queue}/messages", offset=a.offset, count=a.count
    )

    def show(r: dict[str, Any]) -> str:
        head = (
            f"queue {r['queue_id']} of {r['topic']}: offsets {r['min_offset']}..{r['max_offset']}, "
            f"next {r['next_offset']}"
        )
        return head + "\n\n" + _message_rows(r["messages"])

    return r, show


def cmd_send(api: Api, a: argparse.Namespace) -> tuple[Any, Out]:
    text = sys.stdin.read() if a.body == "-" else a.body
    props: dict[str, str] = {}
    for item in a.property or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise AdminError(f"--property wants NAME=VALUE, got {item!r}")
        props[name] = value
    body: dict[str, Any] = {"body": text, "properties": props}
    if a.base64:
        body["body_encoding"] = "base64"
    if a.tags:
        body["tags"] = a.tags
    if a.keys:
        body["keys"] = a.keys
    if a.queue is not None:
        body["queue_id"] = a.queue
    r = api.call("POST", f"/api/topics/{_q(a.topic)}/messages", body)
    return (
        r,
        lambda r: (
            f"sent to {r['topic']} queue {r['queue_id']} offset {r['queue_offset']}: "
            f"msg id {r['msg_id']}, unique key {r['unique_key']}"
        ),
    )


# ---- parser ----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=argparse.SUPPRESS,
        help=f"admin API URL (env FERRYMQ_ADMIN_URL, default {DEFAULT_SERVER})",
    )
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the API's JSON")

    p = _Parser(
        prog="ferrymq admin",
        parents=[common],
        description="Manage a running ferrymq broker through its REST API (token: env FERRYMQ_ADMIN_TOKEN).",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def leaf(parent: Any, name: str, fn: Callable[..., Any], help: str, aliases: Sequence[str] = ()) -> Any:
        s = parent.add_parser(name, parents=[common], help=help, aliases=list(aliases))
        s.set_defaults(fn=fn)
        return s

    leaf(sub, "clusters", cmd_clusters, "name servers and brokers", ["cluster"])

    topics = sub.add_parser("topics", help="list, create, update, delete, route, status").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    s = leaf(topics, "list", cmd_topics_list, "topics of the broker")
    s.add_argument("--all", action="store_true", help="include system, retry and DLQ topics")
    for name, fn, verb in (("create", cmd_topics_create, "create"), ("update", cmd_topics_update, "change")):
        s = leaf(topics, name, fn, f"{verb} a topic")
        s.add_argument("topic")
        s.add_argument(
            "--queues", type=int, help="read and write queues" + (" (default 8)" if name == "create" else "")
        )
        s.add_argument("--read-queues", type=int)
        s.add_argument("--write-queues", type=int)
        s.add_argument("--perm", choices=sorted(PERMS), type=str.lower, help="rw (default), r or w")
        s.add_argument(
            "--order", action=argparse.BooleanOptionalAction, default=None, help="an ordered topic"
        )
    leaf(topics, "delete", cmd_topics_delete, "delete a topic").add_argument("topic")
    leaf(topics, "route", cmd_topics_route, "brokers and queues, from the name servers").add_argument("topic")
    leaf(topics, "status", cmd_topics_status, "min/max offset and last store time per queue").add_argument(
        "topic"
    )

    groups = sub.add_parser("groups", help="list, progress (lag), reset").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    leaf(groups, "list", cmd_groups_list, "consumer groups with total lag")
    leaf(groups, "progress", cmd_groups_progress, "per-queue offsets and lag", ["lag"]).add_argument("group")
    s = leaf(groups, "reset", cmd_groups_reset, "reset committed offsets", ["reset-offset"])
    s.add_argument("group")
    s.add_argument("--to", required=True, help="earliest, latest, or a time (ms, or 2024-05-01T12:00:00)")
    s.add_argument("--topic", help="only this topic")
    s.add_argument("--force", action="store_true", help="even while the group has live members")

    msgs = sub.add_parser("messages", help="by id, by key, by queue and offset").add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=_Parser
    )
    s = leaf(msgs, "id", cmd_messages_id, "a message by msg id or unique key")
    s.add_argument("msg_id")
    s.add_argument("--topic", help="topic of a unique key (faster)")
    s = leaf(msgs, "key", cmd_messages_key, "messages of a topic by key")
    s.add_argument("topic")
    s.add_argument("key")
    s.add_argument("--begin", help="stored from (ms or ISO time)")
    s.add_argument("--end", help="stored until (ms or ISO time)")
    s.add_argument("--max", type=int, default=32)
    s = leaf(msgs, "queue", cmd_messages_queue, "messages of a queue from an offset")
    s.add_argument("topic")
    s.add_argument("queue", type=int)
    s.add_argument("--offset", type=int, help="default: the last --count")
    s.add_argument("--count", type=int, default=32)

    s = leaf(sub, "send", cmd_send, "send a message")
    s.add_argument("topic")
    s.add_argument("body", help="the body; '-' reads it from stdin")
    s.add_argument("--tags")
    s.add_argument("--keys", nargs="+")
    s.add_argument("--property", "-p", action="append", metavar="NAME=VALUE")
    s.add_argument("--queue", type=int)
    s.add_argument("--base64", action="store_true", help="the body is base64 (binary)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    server = getattr(args, "server", None) or os.environ.get("FERRYMQ_ADMIN_URL") or DEFAULT_SERVER
    api = Api(server, os.environ.get("FERRYMQ_ADMIN_TOKEN"))
    try:
        data, show = args.fn(api, args)
    except AdminError as exc:
        print(f"ferrymq admin: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(show(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
