"""Client-side checks before anything is sent, as Java's ``Validators`` and ``TopicValidator``.

Topic and group names: not blank, at most 127 (topic) / 255 (group) characters, only
``[%|a-zA-Z0-9_-]``. Topics reserved for the broker's own use cannot be sent to. Bodies must be
non-empty and at most ``max_message_size`` bytes (Java's default is 4 MiB). Each check raises
:class:`~ferrymq.client.errors.ValidationError` (a ``ValueError``) with Java's wording.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ferrymq.client.errors import ValidationError
from ferrymq.core.remoting.message import PROPERTY_DELAY_TIME_LEVEL, Message
from ferrymq.core.remoting.subscription import SUB_ALL, SubscriptionData

TOPIC_MAX_LENGTH = 127
CHARACTER_MAX_LENGTH = 255
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
RETRY_GROUP_TOPIC_PREFIX = "%RETRY%"
AUTO_CREATE_TOPIC_KEY = "TBW102"
_LEGAL = re.compile(r"^[%|a-zA-Z0-9_-]+$")

#: ``TopicValidator.NOT_ALLOWED_SEND_TOPIC_SET``
NOT_ALLOWED_SEND_TOPICS = frozenset(
    {
        "SCHEDULE_TOPIC_XXXX",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "RMQ_SYS_TRANS_OP_HALF_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
    }
)


def check_topic(topic: object) -> str:
    """Return ``topic`` if it is a legal name, else raise ValidationError."""
    if not isinstance(topic, str) or not topic.strip():
        raise ValidationError("The specified topic is blank")
    if len(topic) > TOPIC_MAX_LENGTH:
        raise ValidationError(f"The specified topic is longer than topic max length {TOPIC_MAX_LENGTH}.")
    if not _LEGAL.match(topic):
        raise ValidationError(
            f"The specified topic[{topic}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        )
    return topic


def subscription_of(topic: str, expression: object = SUB_ALL, sql: object = None) -> SubscriptionData:
    """A consumer's subscription: a TAG ``expression``, or an SQL92 ``sql`` expression (the
    broker parses it; an empty one is refused here, as ``MessageSelector.bySql`` users would
    only learn it from the broker)."""
    if sql is not None:
        if not isinstance(sql, str) or not sql.strip():
            raise ValidationError("the SQL92 expression must be a non-empty str")
        if expression != SUB_ALL:
            raise ValidationError("subscribe with a tag expression or an SQL92 expression, not both")
        return SubscriptionData.sql92(topic, sql)
    if not isinstance(expression, str):
        raise ValidationError("the subscription expression must be a str (a TAG expression; SQL92 via sql=)")
    return SubscriptionData.build(topic, expression)


def check_group(group: object) -> str:
    """Return ``group`` if it is a legal producer/consumer group name, else raise ValidationError."""
    if not isinstance(group, str) or not group.strip():
        raise ValidationError("the specified group is blank")
    if len(group) > CHARACTER_MAX_LENGTH:
        raise ValidationError("the specified group is longer than group max length 255.")
    if not _LEGAL.match(group):
        raise ValidationError(
            f"the specified group[{group}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        )
    return group


def check_send_topic(topic: object) -> str:
    """A legal topic that producers may send to."""
    check_topic(topic)
    assert isinstance(topic, str)
    if topic in NOT_ALLOWED_SEND_TOPICS:
        raise ValidationError(f"Sending message to topic[{topic}] is forbidden.")
    return topic


def check_message(msg: object, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> Message:
    """``Validators.checkMessage``: topic, body present, non-empty and not over the limit."""
    if msg is None:
        raise ValidationError("the message is null")
    if not isinstance(msg, Message):
        raise ValidationError(f"expected a Message, got {type(msg).__name__}")
    check_send_topic(msg.topic)
    body = msg.body
    if body is None:
        raise ValidationError("the message body is null")
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ValidationError(f"the message body must be bytes, not {type(body).__name__}")
    if len(body) == 0:
        raise ValidationError("the message body length is zero")
    if len(body) > max_message_size:
        raise ValidationError(f"the message body size over max value, MAX: {max_message_size}")
    if msg.properties is not None and not isinstance(msg.properties, dict):
        raise ValidationError("the message properties must be a dict of str to str")
    for key, value in (msg.properties or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValidationError(f"property {key!r} must map a str to a str")
        if "\x01" in key or "\x02" in key or "\x01" in value or "\x02" in value:
            raise ValidationError(f"property {key!r} contains a separator character (\\x01 or \\x02)")
    return msg


def check_batch(
    messages: Sequence[object], max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
) -> list[Message]:
    """``MessageBatch.generateFromList`` rules: non-empty, one topic, no retry topic, no delay."""
    if not messages:
        raise ValidationError("the batch is empty")
    out: list[Message] = []
    topic: str | None = None
    for msg in messages:
        m = check_message(msg, max_message_size)
        if m.topic.startswith(RETRY_GROUP_TOPIC_PREFIX):
            raise ValidationError("Retry Group is not supported for batching")
        if PROPERTY_DELAY_TIME_LEVEL in (m.properties or {}):
            raise ValidationError("TimeDelayLevel is not supported for batching")
        if topic is None:
            topic = m.topic
        elif m.topic != topic:
            raise ValidationError("The topic of the messages in one batch should be the same")
        out.append(m)
    return out
