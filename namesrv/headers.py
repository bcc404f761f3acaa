"""Typed reads of request extFields for the name server's request handlers.

Java decodes a custom header by reflection and rejects a missing ``@CFNotNull`` field; here each
handler asks for the fields it needs, and a missing or malformed one becomes INVALID_PARAMETER
with a remark naming the field, instead of an exception escaping into the transport. Values
follow Java's parsing: ``Long.parseLong`` for numbers, ``Boolean.parseBoolean`` for flags.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, cast

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand
from ferrymq.core.remoting.route import RouteCodecError
from ferrymq.core.remoting.transport import RemotingConnection

log = logging.getLogger("ferrymq.namesrv")

P = ParamSpec("P")


class HeaderFieldError(ValueError):
    """A required header field is missing or a field does not parse."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"header field {name} {problem}")
        self.name = name


def require_str(cmd: RemotingCommand, name: str) -> str:
    value = cmd.ext_fields.get(name)
    if value is None:
        raise HeaderFieldError(name, "is missing")
    return value


def optional_str(cmd: RemotingCommand, name: str) -> str | None:
    return cmd.ext_fields.get(name)


def _parse_int(name: str, value: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise HeaderFieldError(name, f"is not an integer: {value!r}") from None


def require_int(cmd: RemotingCommand, name: str) -> int:
    return _parse_int(name, require_str(cmd, name))


def optional_int(cmd: RemotingCommand, name: str) -> int | None:
    value = cmd.ext_fields.get(name)
    if value is None or value == "":
        return None
    return _parse_int(name, value)


def optional_bool(cmd: RemotingCommand, name: str) -> bool | None:
    """``Boolean.parseBoolean``: only a case-insensitive "true" is true."""
    value = cmd.ext_fields.get(name)
    if value is None:
        return None
    return value.strip().lower() == "true"


def guarded(handler: Callable[P, RemotingCommand]) -> Callable[P, RemotingCommand]:
    """Turn header and body decoding failures into error responses naming the problem.

    Wraps a handler (function or method) whose last two arguments are the request and the
    connection.
    """

    @functools.wraps(handler)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> RemotingCommand:
        cmd = cast(RemotingCommand, args[-2])
        conn = cast(RemotingConnection, args[-1])
        try:
            return handler(*args, **kwargs)
        except HeaderFieldError as exc:
            log.info("request code %s from %s rejected: %s", cmd.code, conn.peer, exc)
            return cmd.response(ResponseCode.INVALID_PARAMETER, str(exc))
        except RouteCodecError as exc:
            log.warning("request code %s from %s has a bad body: %s", cmd.code, conn.peer, exc)
            return cmd.response(ResponseCode.SYSTEM_ERROR, f"cannot decode request body: {exc}")

    return wrapper
