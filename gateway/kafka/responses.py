"""Kafka responses of any version, built by the frontend for every API module from one set of
field values (``respond``), with the helpers handlers share (NO_THROTTLE, ``millis``).

The APIs change little between versions (a field added here, a list became a batch there),
so a handler describes its response once, with every field any version has, and ``build`` keeps
the fields the requested version's dataclass declares, turning nested lists of dicts into that
version's nested dataclasses. No per-version response code, and nothing hand-encoded.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from kio.index import load_response_from_request
from kio.schema.errors import ErrorCode

T = TypeVar("T")

NO_THROTTLE = datetime.timedelta(0)


@functools.cache
def _fields(cls: type) -> dict[str, Any]:
    """Field name -> the nested dataclass type of a list field or an entity field, else None."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = typing.get_args(tp)
        if type(None) in args:  # a nullable field: its other type
            tp = next(a for a in args if a is not type(None))
            args = typing.get_args(tp)
        if args and isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
            out[f.name] = args[0]
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
            out[f.name] = tp
        else:
            out[f.name] = None
    return out


def build(cls: type[T], values: Mapping[str, Any]) -> T:
    """``cls(**values)`` keeping only ``cls``'s fields; dicts (or lists of them) become nested entities."""
    kwargs: dict[str, Any] = {}
    for name, nested in _fields(typing.cast(Any, cls)).items():
        if name not in values:
            continue
        value = values[name]
        if nested is not None and isinstance(value, Mapping):
            value = build(nested, value)
        elif nested is not None and isinstance(value, list | tuple):
            value = tuple(build(nested, v) if isinstance(v, Mapping) else v for v in value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


_response_types: dict[type, type] = {}


def respond(request: Any, values: Mapping[str, Any]) -> Any:
    """The response to ``request`` (same API key and version) built from ``values``."""
    cls = _response_types.get(type(request))
    if cls is None:
        cls = _response_types[type(request)] = load_response_from_request(type(request))
    return build(cls, values)


def millis(value: datetime.timedelta | int) -> int:
    """A kio timedelta field (or a plain int) as whole milliseconds."""
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    return int(value)


def partition_errors(request: Any, results: Iterable[tuple[str, Iterable[tuple[int, ErrorCode]]]]) -> Any:
    """The response of OffsetCommit and TxnOffsetCommit (the same shape): an error per partition."""
    return respond(
        request,
        {
            "throttle_time": NO_THROTTLE,
            "topics": [
                {"name": name, "partitions": [{"partition_index": p, "error_code": e} for p, e in parts]}
                for name, parts in results
            ],
        },
    )
