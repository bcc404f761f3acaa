"""Message types of the client API.

``Message`` (what a producer sends) and ``MessageExt`` (what a consumer receives) are the shared
dataclasses of ``ferrymq.core.remoting.message``, re-exported here unchanged. This module adds
``MessageQueue`` (one queue of a topic on one broker group), ``SendStatus`` and ``SendResult``,
shaped like their Java namesakes. Transactions, delay levels and request/reply are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.message import Message, MessageExt

__all__ = ["Message", "MessageExt", "MessageQueue", "SendResult", "SendStatus"]


@dataclass(frozen=True, order=True, slots=True)
class MessageQueue:
    """A queue: (topic, broker group name, queue id). Sorts like Java's ``MessageQueue.compareTo``."""

    topic: str
    broker_name: str
    queue_id: int

    def __str__(self) -> str:
        # Java's MessageQueue.toString(); the consistent-hash allocation hashes this exact text.
        return f"MessageQueue [topic={self.topic}, brokerName={self.broker_name}, queueId={self.queue_id}]"


class SendStatus(Enum):
    """Outcome of a send the broker accepted (``SendStatus``); anything else is a BrokerError."""

    SEND_OK = "SEND_OK"
    FLUSH_DISK_TIMEOUT = "FLUSH_DISK_TIMEOUT"
    FLUSH_SLAVE_TIMEOUT = "FLUSH_SLAVE_TIMEOUT"
    SLAVE_NOT_AVAILABLE = "SLAVE_NOT_AVAILABLE"

    @classmethod
    def from_response_code(cls, code: int) -> SendStatus | None:
        """The status for a send response code, None when the code is an error."""
        return _STATUS_BY_CODE.get(code)


_STATUS_BY_CODE = {
    ResponseCode.SUCCESS: SendStatus.SEND_OK,
    ResponseCode.FLUSH_DISK_TIMEOUT: SendStatus.FLUSH_DISK_TIMEOUT,
    ResponseCode.FLUSH_SLAVE_TIMEOUT: SendStatus.FLUSH_SLAVE_TIMEOUT,
    ResponseCode.SLAVE_NOT_AVAILABLE: SendStatus.SLAVE_NOT_AVAILABLE,
}


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a successful send returns.

    ``msg_id`` is the UNIQ_KEY the client set (comma-joined for a batch); ``offset_msg_id`` is the
    broker's id (store host + commit-log offset, comma-joined for a batch); ``queue_offset`` is the
    logical offset of the (first) message in ``queue``.
    """

    status: SendStatus
    msg_id: str
    offset_msg_id: str
    queue: MessageQueue
    queue_offset: int
    region_id: str = "DefaultRegion"

    @property
    def ok(self) -> bool:
        return self.status is SendStatus.SEND_OK
