"""Typed reads of a request's custom header (extFields), and the error a refused request raises.

Java decodes a custom header by reflection and rejects a missing ``@CFNotNull`` field; here each
handler asks for the fields it needs. A missing or malformed field raises :class:`BadRequest`
with Java's remark ("the custom field <x> is null"); the response code is SYSTEM_ERROR, as a
Java server answers it, unless the caller passes another (the name server answers
INVALID_PARAMETER). Numbers parse as ``Long.parseLong``, flags as ``Boolean.parseBoolean``.
Shared by the broker's processors and the name server.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar, cast

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import RouteCodecError
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.remoting")

P = ParamSpec("P")
T = TypeVar("T", bool, None)


class BadRequest(Exception):
    """A request the server refuses; becomes a response with ``code`` and ``remark``."""

    def __init__(self, remark: str, code: ResponseCode = ResponseCode.SYSTEM_ERROR) -> None:
        super().__init__(remark)
        self.code = code
        self.remark = remark

    def response(self, cmd: RemotingCommand) -> RemotingCommand:
        return cmd.response(self.code, self.remark)


def req_str(ext: dict[str, str], name: str, code: ResponseCode = ResponseCode.SYSTEM_ERROR) -> str:
    value = ext.get(name)
    if value is None:
        raise BadRequest(f"the custom field <{name}> is null", code)
    return value


def _int(name: str, value: str, code: ResponseCode) -> int:
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"the custom field <{name}> is not a number: {value!r}", code) from None


def req_int(ext: dict[str, str], name: str, code: ResponseCode = ResponseCode.SYSTEM_ERROR) -> int:
    return _int(name, req_str(ext, name, code), code)


def opt_int(
    ext: dict[str, str], name: str, default: int, code: ResponseCode = ResponseCode.SYSTEM_ERROR
) -> int:
    """``default`` when the field is absent or empty."""
    value = ext.get(name)
    if value is None or value == "":
        return default
    return _int(name, value, code)


def opt_bool(ext: dict[str, str], name: str, default: T) -> bool | T:
    """``default`` when absent; otherwise only a case-insensitive "true" is true."""
    value = ext.get(name)
    if value is None:
        return default
    return value.lower() == "true"


def guarded(handler: Callable[P, RemotingCommand]) -> Callable[P, RemotingCommand]:
    """Turn BadRequest and undecodable bodies (RouteCodecError) into error responses.

    Wraps a handler (function or method) whose last two arguments are the request and the
    connection.
    """

    @functools.wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> RemotingCommand:
        cmd = cast(RemotingCommand, args[-2])
        conn = cast(RemotingConnection, args[-1])
        try:
            return handler(*args, **kwargs)
        except BadRequest as exc:
            log.info("request code %s from %s rejected: %s", cmd.code, conn.peer, exc.remark)
            return exc.response(cmd)
        except RouteCodecError as exc:
            log.warning("request code %s from %s has a bad body: %s", cmd.code, conn.peer, exc)
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"cannot decode request body: {exc}")

    return wrapper
