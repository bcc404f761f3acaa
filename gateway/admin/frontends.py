"""Other frontends' state in the admin API, through the ``FrontendView`` the ``ferrymq`` command
hands over: their groups join the group registry, and their batch entries are expanded into one
message view per record (the frontend decodes, this module turns its plain records into
``MessageOut``)."""

from __future__ import annotations

from ferrymq.core.broker.frontend_view import FrontendView, RecordView
from ferrymq.core.remoting.message import PROPERTY_KEYS, PROPERTY_TAGS
from ferrymq.gateway.admin.message_view import BatchDecoder, body_fields
from ferrymq.gateway.admin.models import MessageOut


def batch_decoder(frontend: FrontendView, fmt: int) -> BatchDecoder:
    """A decoder of ``fmt`` batch entries for ``message_view.decode_entries``."""

    def decode(payload: bytes, base: int, view: MessageOut) -> list[MessageOut]:
        count = int(view.properties.get("BATCH_COUNT", "0"))
        return [_message(record, view) for record in frontend.batch_records(fmt, payload, count)]

    return decode


def _message(record: RecordView, view: MessageOut) -> MessageOut:
    """The batch's view with one record's fields."""
    props = record.properties
    body, encoding = body_fields(record.body)
    keys = props.get(PROPERTY_KEYS)
    return view.model_copy(
        update={
            "queue_offset": record.queue_offset,
            "tags": props.get(PROPERTY_TAGS),
            "keys": keys.split() if keys else [],
            "body": body,
            "body_encoding": encoding,
            "body_size": len(record.body),
            "properties": props,
            "born_timestamp": record.born_timestamp,
        }
    )
