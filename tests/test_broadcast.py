"""Broadcasting push consumers against a real ``ferrymq serve``: every member gets every message,
offsets stay in each member's local file (a restarted member resumes there), no retries."""

from __future__ import annotations

from pathlib import Path

from ferrymq.cli.testing import FerryServer
from ferrymq.client import ConsumeStatus, PushConsumer
from tests.test_consumer_push import FAST, _send
from tests.test_consumer_support import Recorder, create_topic


def test_every_member_gets_everything_and_resumes_from_its_file(tmp_path: Path) -> None:
    offsets_dir = tmp_path / "offsets"
    with FerryServer(tmp_path / "server") as server:
        create_topic(server, "BroadcastT", 4)
        rec = Recorder()

        def member(name: str, result: object = ConsumeStatus.CONSUME_SUCCESS) -> PushConsumer:
            c = PushConsumer(
                server.namesrv_addr,
                "broadcast-group",
                message_model="BROADCASTING",
                consume_from="FIRST_OFFSET",
                offset_store_dir=offsets_dir,
                instance_name=name,
                **FAST,
            )
            c.subscribe("BroadcastT")
            c.register_listener(rec.listener(name, result))
            return c.start()

        # c3 fails everything: broadcast consumers do not retry, it still moves on
        members = [member("b1"), member("b2"), member("b3", ConsumeStatus.RECONSUME_LATER)]
        try:
            assert all(len(m.assignment()) == 4 for m in members)  # every member takes every queue
            bodies = [f"b{i}".encode() for i in range(60)]
            _send(server, "BroadcastT", bodies)
            for name in ("b1", "b2", "b3"):
                assert rec.wait_for(lambda n=name: rec.bodies(n) == set(bodies)), name
            assert len(rec.got["b1"]) == len(bodies) and len(rec.got["b3"]) == len(bodies)
            leaver = members.pop(0)
            leaver.shutdown()  # its offsets go to its own file
            assert (offsets_dir / leaver.client_id / "broadcast-group" / "offsets.json").is_file()
            later = [f"later{i}".encode() for i in range(10)]
            _send(server, "BroadcastT", later)
            assert rec.wait_for(lambda: rec.bodies("b2") >= set(later))
            members.insert(0, member("b1"))  # same instance name: resumes at its own offsets
            assert rec.wait_for(lambda: rec.bodies("b1") >= set(later))
            assert len(rec.got["b1"]) == len(bodies) + len(later)  # nothing twice
            assert not any(m.topic.startswith("%RETRY%") for m in rec.got["b3"])
        finally:
            for m in members:
                m.shutdown()
