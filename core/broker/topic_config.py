"""Topics this broker hosts, persisted to ``config/topics.json`` (RocketMQ's TopicConfigManager).

System topics are created at start; ``TBW102`` is the template a producer's unknown topic is
auto-created from when autoCreateTopicEnable is on. Names are validated as RocketMQ's
``TopicValidator`` does.

A change is O(1) on the event loop: the table is updated in memory and the file is written by a
:class:`BackgroundJsonWriter` in a worker thread, a burst of creations (a heartbeat naming 1,000
consumer groups) coalesced into one or two writes. RocketMQ writes the file synchronously after
each change; here a reply that promises the topic (UPDATE_AND_CREATE_TOPIC, a send or heartbeat
that created one, Kafka CreateTopics) awaits :meth:`TopicConfigManager.wait_persisted` instead, so
the loop keeps serving everyone else meanwhile.
"""

from __future__ import annotations

import logging
import random
import re
from pathlib import Path
from typing import Any

from ferrymq.core.config import BrokerConfig
from ferrymq.core.persist import BackgroundJsonWriter, read_json
from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import (
    PERM_INHERIT,
    PERM_READ,
    PERM_WRITE,
    DataVersion,
    TopicConfig,
)

log = logging.getLogger("ferrymq.topics")

AUTO_CREATE_TOPIC_KEY = "TBW102"
SELF_TEST_TOPIC = "SELF_TEST_TOPIC"
OFFSET_MOVED_EVENT = "OFFSET_MOVED_EVENT"
SCHEDULE_TOPIC = "SCHEDULE_TOPIC_XXXX"
TRACE_TOPIC = "RMQ_SYS_TRACE_TOPIC"
#: where timer messages (TIMER_DELIVER_MS ...) wait, in queue 0 (RocketMQ 5's ``rmq_sys_wheel_timer``)
TIMER_TOPIC = "rmq_sys_wheel_timer"
RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"
DLQ_GROUP_TOPIC_PREFIX = "%DLQ%"
TOPIC_MAX_LENGTH = 127
_VALID = re.compile(r"^[%|a-zA-Z0-9_-]+$")
#: topics a producer may not send to (``TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET``)
NOT_ALLOWED_SEND = frozenset(
    {SCHEDULE_TOPIC, "RMQ_SYS_TRANS_HALF_TOPIC", "RMQ_SYS_TRANS_OP_HALF_TOPIC", "TRANS_CHECK_MAX_TIME_TOPIC"}
)


#: ``TopicValidator``'s system topic set, which GET_SYSTEM_TOPIC_LIST_FROM_BROKER answers with
SYSTEM_TOPICS = frozenset(
    {
        AUTO_CREATE_TOPIC_KEY,
        SCHEDULE_TOPIC,
        "BenchmarkTest",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        TRACE_TOPIC,
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
        SELF_TEST_TOPIC,
        OFFSET_MOVED_EVENT,
        "CHECKPOINT_TOPIC",
        TIMER_TOPIC,
    }
)


def validate_topic(topic: str) -> str | None:
    """None if ``topic`` is a legal name, else the reason (RocketMQ's wording)."""
    if not topic:
        return "The specified topic is blank."
    if len(topic) > TOPIC_MAX_LENGTH:
        return f"The specified topic is longer than topic max length {TOPIC_MAX_LENGTH}."
    if not _VALID.match(topic):
        return f"The specified topic[{topic}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
    return None


class TopicConfigManager:
    def __init__(self, path: Path, config: BrokerConfig) -> None:
        self.path = path
        self.config = config
        self.topics: dict[str, TopicConfig] = {}
        self.data_version = DataVersion()
        #: each topic's JSON form, kept beside the table so a snapshot of the file is a dict copy
        self._json: dict[str, dict[str, Any]] = {}
        self._writer = BackgroundJsonWriter(path, self.table_json)
        data = read_json(path)
        if isinstance(data, dict):
            for name, obj in (data.get("topicConfigTable") or {}).items():
                self.topics[name] = TopicConfig.from_json(obj, name)
                self._json[name] = self.topics[name].to_json()
            self.data_version = DataVersion.from_json(data.get("dataVersion"))
        self._create_system_topics()

    def _create_system_topics(self) -> None:
        c = self.config
        n = c.default_topic_queue_nums
        system = [TopicConfig(SELF_TEST_TOPIC, 1, 1), TopicConfig(OFFSET_MOVED_EVENT, 1, 1)]
        if c.auto_create_topic_enable:
            system.append(TopicConfig(AUTO_CREATE_TOPIC_KEY, n, n, PERM_INHERIT | PERM_READ | PERM_WRITE))
        system.append(TopicConfig(c.broker_cluster_name, 16, 16, PERM_INHERIT | PERM_READ | PERM_WRITE))
        system.append(TopicConfig(c.broker_name, 1, 1, PERM_INHERIT | PERM_READ | PERM_WRITE))
        system.append(TopicConfig(SCHEDULE_TOPIC, 18, 18))
        system.append(TopicConfig(TRACE_TOPIC, 1, 1))
        for tc in system:
            if tc.topic_name not in self.topics:
                self.update(tc)

    def get(self, topic: str) -> TopicConfig | None:
        return self.topics.get(topic)

    def table_json(self) -> dict[str, Any]:
        """The file's content: the data version and every topic's JSON form (a shallow copy)."""
        return {"dataVersion": self.data_version.to_json(), "topicConfigTable": dict(self._json)}

    def persist(self) -> None:
        """Write outstanding changes now, synchronously (at shutdown)."""
        if self._writer.pending:
            self._writer.write_now()

    async def wait_persisted(self) -> None:
        """Until every change made so far is on disk (written off the loop); OSError if it cannot be."""
        await self._writer.wait()

    @property
    def unwritten(self) -> bool:
        """Some change is not on disk yet."""
        return self._writer.pending

    async def reply_when_persisted(self, cmd: RemotingCommand, response: RemotingCommand) -> RemotingCommand:
        """``response`` to ``cmd`` once every change so far is on disk; SYSTEM_ERROR if it cannot be."""
        try:
            await self._writer.wait()
        except OSError as exc:  # the path and errno stay in the log, not on the wire
            log.error("request code %s: cannot persist the topic config: %s", cmd.code, exc)
            return cmd.response(
                ResponseCode.SYSTEM_ERROR, "cannot persist the topic config (logged by the broker)"
            )
        return response

    def update(self, tc: TopicConfig) -> bool:
        """Create or replace ``tc``; True if the table changed (its write is then scheduled)."""
        old = self.topics.get(tc.topic_name)
        if old == tc:
            return False
        self.topics[tc.topic_name] = tc
        self._json[tc.topic_name] = tc.to_json()
        log.info("topic %s: %s", "updated" if old else "created", tc)
        self._changed()
        return True

    def delete(self, topic: str) -> bool:
        if self.topics.pop(topic, None) is None:
            return False
        del self._json[topic]
        log.info("topic deleted: %s", topic)
        self._changed()
        return True

    def assign(self, table: dict[str, TopicConfig], data_version: DataVersion) -> bool:
        """Make the table ``table`` at ``data_version`` (a slave copying its master's); True if a
        topic changed. Topics the master does not have are deleted, as ``SlaveSynchronize`` does."""
        changed = False
        for name in [n for n in self.topics if n not in table]:
            changed |= self.delete(name)
        for tc in table.values():
            changed |= self.update(tc)
        self.data_version = DataVersion(
            data_version.timestamp, data_version.counter, data_version.state_version
        )
        self._writer.changed()
        return changed

    def set_state_version(self, state_version: int) -> None:
        """Controller mode, a new master: its registrations carry ``state_version`` (the master
        epoch), so a name server ignores an older master still claiming id 0 (lower version)."""
        self.data_version.next_version(state_version)
        self._writer.changed()

    def _changed(self) -> None:
        self.data_version.next_version(self.data_version.state_version)  # a change keeps it
        self._writer.changed()

    def create_in_send(
        self, topic: str, default_topic: str, queue_nums: int, sys_flag: int = 0
    ) -> TopicConfig | None:
        """Auto-create ``topic`` from an inheritable template (``createTopicInSendMessageMethod``)."""
        template = self.topics.get(default_topic)
        if template is None or not template.perm & PERM_INHERIT:
            return None
        if default_topic == AUTO_CREATE_TOPIC_KEY and not self.config.auto_create_topic_enable:
            return None
        n = max(1, min(queue_nums, template.write_queue_nums))
        tc = TopicConfig(topic, n, n, template.perm & ~PERM_INHERIT, topic_sys_flag=sys_flag)
        self.update(tc)
        return tc

    def create_if_absent(self, topic: str, queues: int, perm: int = PERM_READ | PERM_WRITE) -> TopicConfig:
        tc = self.topics.get(topic)
        if tc is None:
            tc = TopicConfig(topic, queues, queues, perm)
            self.update(tc)
        return tc

    @staticmethod
    def random_queue(tc: TopicConfig) -> int:
        return random.randrange(max(1, tc.write_queue_nums))
