"""GET_ALL_TOPIC_CONFIG (21), GET_ALL_CONSUMER_OFFSET (43) and GET_ALL_DELAY_OFFSET (45): the
tables a slave copies from its master (``core/broker/slave_sync.py``; a Java slave's
``SlaveSynchronize`` parses the same bodies), also read by mqadmin, with
GET_SYSTEM_TOPIC_LIST_FROM_BROKER (305), the system topic names its exportMetadata leaves out.

Bodies are the JSON of RocketMQ's ``TopicConfigAndMappingSerializeWrapper``,
``ConsumerOffsetSerializeWrapper`` and the delayOffset file. The topic table is one page: no
``totalTopicNum`` header, which a 5.x client takes for "everything returned" (the paging header
fields of its request are ignored). Static-topic mappings are always empty but present, as the
Java slave ``putAll``s them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ferrymq.core.broker.topic_config import SYSTEM_TOPICS
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import DataVersion
from ferrymq.core.remoting.transport import HandlerResult, RemotingConnection

if TYPE_CHECKING:
    from ferrymq.core.broker.broker import Broker


class MetadataProcessor:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        #: static topics are not served: the mapping table never changes
        self._mapping_version = DataVersion()

    def all_topics(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        body = self.broker.topics.table_json()
        body["mappingDataVersion"] = self._mapping_version.to_json()
        body["topicQueueMappingDetailMap"] = {}
        body["topicQueueMappingInfoMap"] = {}
        return cmd.response(body=json.dumps(body).encode())

    def system_topics(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        return cmd.response(body=json.dumps({"topicList": sorted(SYSTEM_TOPICS)}).encode())

    def all_consumer_offsets(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        table = {k: {str(q): o for q, o in v.items()} for k, v in self.broker.offsets.table.items()}
        body = {"offsetTable": table, "dataVersion": DataVersion().to_json()}
        return cmd.response(body=json.dumps(body).encode())

    def all_delay_offsets(self, cmd: RemotingCommand, conn: RemotingConnection) -> HandlerResult:
        offsets = self.broker.schedule.offsets
        body = {
            "offsetTable": {str(level): o for level, o in sorted(offsets.items())},
            "dataVersion": DataVersion().to_json(),
        }
        return cmd.response(body=json.dumps(body).encode())
