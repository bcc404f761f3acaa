"""A filtered pull (tag or SQL92) that finds nothing matching parks as a long poll (issue 11).

The broker moves the pull's offset past the messages that did not match and waits there, like an
unfiltered pull of a caught-up queue; a new message wakes it and the filter is checked again, so a
consumer neither spins on a stream of messages it does not want nor misses the one it wants.
Before: the pull was answered PULL_RETRY_IMMEDIATELY at once, and a parked SQL92 pull again at
every arrival that did not match (the client came straight back, once per message).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.message import decode_stored_messages
from ferrymq.core.remoting.transport import connect
from tests.inprocess import kafka_broker
from tests.remoting_helpers import pull, send_v2

TOPIC = "FilteredPoll"
#: (expressionType, expression, properties of a matching message, of one that does not match)
FILTERS = {
    "tag": ("TAG", "wanted", {"TAGS": "wanted"}, {"TAGS": "other"}),
    "sql92": ("SQL92", "a = 'wanted'", {"a": "wanted"}, {"a": "other"}),
}


def filtered_pull(kind: str, offset: int, suspend_ms: int) -> RemotingCommand:
    etype, expression, _, _ = FILTERS[kind]
    cmd = pull(TOPIC, 0, offset, expression=expression, suspend_ms=suspend_ms)
    cmd.ext_fields["expressionType"] = etype
    return cmd


@pytest.mark.parametrize("kind", sorted(FILTERS))
def test_a_filtered_pull_matching_nothing_parks_and_wakes_on_a_match(tmp_path: Path, kind: str) -> None:
    _, _, wanted, other = FILTERS[kind]

    async def main() -> None:
        async with kafka_broker(tmp_path, TOPIC, 1) as (broker, _frontend):
            conn = await connect("127.0.0.1", broker.port)
            try:

                async def send(props: dict[str, str], body: bytes) -> None:
                    resp = await conn.invoke(send_v2(TOPIC, body, 0, props, 1))
                    assert resp.code == ResponseCode.SUCCESS, resp.remark

                for i in range(5):
                    await send(other, b"no-%d" % i)
                # no suspend flag: answered at once, as an empty queue, its offset past the 5
                now = await conn.invoke(filtered_pull(kind, 0, 0))
                assert now.code == ResponseCode.PULL_NOT_FOUND, (now.code, now.remark)
                assert now.ext_fields["nextBeginOffset"] == "5"

                parked = asyncio.ensure_future(conn.invoke(filtered_pull(kind, 0, 20_000), timeout=30))
                while broker.hold.waiting == 0:  # parked, not answered
                    assert not parked.done(), parked.result()
                    await asyncio.sleep(0.01)
                for i in range(5, 25):
                    await send(other, b"no-%d" % i)
                await send(wanted, b"yes")
                resp = await parked
                assert resp.code == ResponseCode.SUCCESS, (resp.code, resp.remark)
                assert [m.body for m in decode_stored_messages(resp.body)] == [b"yes"]
                assert resp.ext_fields["nextBeginOffset"] == "26"
            finally:
                conn.close()

    asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize("kind", sorted(FILTERS))
def test_a_consumer_waiting_for_a_match_sends_one_pull(tmp_path: Path, kind: str) -> None:
    """A consumer's pull loop (as the push consumer: every answer's nextBeginOffset, then pull
    again) while 30 messages it does not want arrive, then one it wants: one pull in all.
    Before: 31 for SQL92 (each arrival woke the parked pull, answered PULL_RETRY_IMMEDIATELY);
    tag pulls were one already (only a matching tag code wakes them)."""
    _, _, wanted, other = FILTERS[kind]

    async def main() -> None:
        async with kafka_broker(tmp_path, TOPIC, 1) as (broker, _frontend):
            consumer = await connect("127.0.0.1", broker.port)
            producer = await connect("127.0.0.1", broker.port)
            pulls = 0

            async def consume() -> list[bytes]:
                nonlocal pulls
                offset = 0
                while True:
                    pulls += 1
                    resp = await consumer.invoke(filtered_pull(kind, offset, 20_000), timeout=30)
                    if resp.code == ResponseCode.SUCCESS:
                        return [m.body for m in decode_stored_messages(resp.body)]
                    assert resp.code in (ResponseCode.PULL_NOT_FOUND, ResponseCode.PULL_RETRY_IMMEDIATELY)
                    offset = int(resp.ext_fields["nextBeginOffset"])

            try:
                got = asyncio.ensure_future(consume())
                while broker.hold.waiting == 0:
                    await asyncio.sleep(0.01)
                for i in range(30):
                    resp = await producer.invoke(send_v2(TOPIC, b"no-%d" % i, 0, other, 1))
                    assert resp.code == ResponseCode.SUCCESS, resp.remark
                resp = await producer.invoke(send_v2(TOPIC, b"yes", 0, wanted, 1))
                assert resp.code == ResponseCode.SUCCESS, resp.remark
                assert await got == [b"yes"]
                assert pulls == 1
            finally:
                consumer.close()
                producer.close()

    asyncio.run(asyncio.wait_for(main(), 30))
