"""ferrymq.client.allocate against the official Java client's strategy classes (rocketmq-client
5.3.3, unmodified): the same generated inputs -- many sizes of queue and member lists, several
brokers and machine rooms -- must give every member exactly the queues, in the same order, that
the Java class of the same name gives it. The Java side is compat-tests/java's
AllocateConformance; without java or mvn the test is skipped with the reason shown."""

from __future__ import annotations

import random
from pathlib import Path

import java_support as js
import pytest

from ferrymq.client.allocate import (
    AllocateMachineRoomNearby,
    AllocateMessageQueueAveragely,
    AllocateMessageQueueAveragelyByCircle,
    AllocateMessageQueueByConfig,
    AllocateMessageQueueByMachineRoom,
    AllocateMessageQueueConsistentHash,
    AllocateStrategy,
    java_split,
)
from ferrymq.client.message import MessageQueue

SKIP_REASON = js.skip_reason()
pytestmark = [pytest.mark.compat, pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")]

ROOMS = ["hz", "sh", "bj"]


def _mq_text(mq: MessageQueue) -> str:
    return f"{mq.topic}|{mq.broker_name}|{mq.queue_id}"


def _strategy(name: str, param: str) -> AllocateStrategy:
    if name == "AVG":
        return AllocateMessageQueueAveragely()
    if name == "AVG_BY_CIRCLE":
        return AllocateMessageQueueAveragelyByCircle()
    if name == "CONSISTENT_HASH":
        return AllocateMessageQueueConsistentHash(int(param))
    if name == "MACHINE_ROOM":
        return AllocateMessageQueueByMachineRoom([r for r in param.split(",") if r])
    if name == "CONFIG":
        return AllocateMessageQueueByConfig(_parse_queues(param))
    if name == "NEARBY":
        return AllocateMachineRoomNearby(
            _strategy(param, "10"),
            lambda mq: java_split(mq.broker_name, "@")[0],
            lambda cid: java_split(cid, "-")[0],
        )
    raise ValueError(name)


def _parse_queues(csv: str) -> list[MessageQueue]:
    out = []
    for item in csv.split(","):
        if item:
            topic, broker, qid = item.split("|")
            out.append(MessageQueue(topic, broker, int(qid)))
    return out


def _client_id(rng: random.Random) -> str:
    """``<room>-<ip>@<pid>``: the room prefix is what the nearby resolver reads."""
    return f"{rng.choice(ROOMS)}-10.0.{rng.randint(0, 9)}.{rng.randint(1, 250)}@{rng.randint(1, 99999)}"


def _cases(rng: random.Random) -> list[tuple[str, str, str, list[MessageQueue], list[str]]]:
    cases = []
    plans = [
        ("AVG", ""),
        ("AVG_BY_CIRCLE", ""),
        ("CONSISTENT_HASH", "10"),
        ("CONSISTENT_HASH", "3"),
        ("MACHINE_ROOM", ""),
        ("CONFIG", ""),
        ("NEARBY", "AVG"),
        ("NEARBY", "AVG_BY_CIRCLE"),
        ("NEARBY", "CONSISTENT_HASH"),
    ]
    for name, param in plans:
        for n in range(40):
            brokers = []
            for b in range(rng.randint(1, 4)):
                room = rng.choice(ROOMS)
                brokers.append(f"{room}@broker-{b}" if rng.random() < 0.85 else f"plain-broker-{b}")
            topics = ["TopicA"] if rng.random() < 0.7 else ["TopicA", "TopicB"]
            queues = sorted(
                MessageQueue(t, b, q) for t in topics for b in brokers for q in range(rng.randint(1, 10))
            )
            members = sorted({_client_id(rng) for _ in range(rng.randint(1, 12))})
            p = param
            if name == "MACHINE_ROOM":
                p = ",".join(sorted(rng.sample(ROOMS, rng.randint(1, 3))))
            elif name == "CONFIG":
                p = ",".join(_mq_text(mq) for mq in rng.sample(queues, min(len(queues), 3)))
            cases.append((f"{name}-{param}-{n}", name, p, queues, members))
    return cases


def test_python_strategies_match_the_java_classes(tmp_path: Path) -> None:
    cases = _cases(random.Random(20240601))
    case_file = tmp_path / "cases.tsv"
    case_file.write_text(
        "\n".join(
            "\t".join((cid, name, param, ",".join(_mq_text(mq) for mq in mqs), ",".join(members)))
            for cid, name, param, mqs, members in cases
        )
    )
    js.build()
    results = js.run_java("AllocateConformance", str(case_file), timeout=120)
    by_case = {c[0]: c for c in cases}
    assert len(results) == sum(len(c[4]) for c in cases)
    mismatches = []
    for r in results:
        case_id, name, param, mqs, members = by_case[r["case"]]
        strategy = _strategy(name, param)
        try:
            ours = [_mq_text(mq) for mq in strategy.allocate("conformance-group", r["cid"], mqs, members)]
        except ValueError:
            ours = None
        theirs = r.get("mqs")
        if ours != theirs:
            mismatches.append((case_id, r["cid"], ours, theirs))
    assert not mismatches, f"{len(mismatches)} differences, first: {mismatches[:3]}"
    # the generated cases exercise what they should: some members get nothing, some several queues
    sizes = [len(r["mqs"]) for r in results if "mqs" in r]
    assert 0 in sizes and max(sizes) > 5
