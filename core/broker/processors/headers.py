"""Reading custom-header fields from extFields with Java's errors for missing or bad values."""

from __future__ import annotations

from ferrymq.core.remoting.codes import ResponseCode
from ferrymq.core.remoting.command import RemotingCommand


class BadRequest(Exception):
    """A request the broker refuses; becomes a response with ``code`` and ``remark``."""

    def __init__(self, remark: str, code: int = ResponseCode.SYSTEM_ERROR) -> None:
        super().__init__(remark)
        self.code = code
        self.remark = remark

    def response(self, cmd: RemotingCommand) -> RemotingCommand:
        return cmd.response(self.code, self.remark)


def req_str(ext: dict[str, str], name: str) -> str:
    value = ext.get(name)
    if value is None:
        raise BadRequest(f"the custom field <{name}> is null")
    return value


def req_int(ext: dict[str, str], name: str) -> int:
    value = req_str(ext, name)
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"the custom field <{name}> is not a number: {value!r}") from None


def opt_int(ext: dict[str, str], name: str, default: int) -> int:
    value = ext.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(f"the custom field <{name}> is not a number: {value!r}") from None


def opt_bool(ext: dict[str, str], name: str, default: bool) -> bool:
    value = ext.get(name)
    if value is None:
        return default
    return value.lower() == "true"
