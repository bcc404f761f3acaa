"""RemotingCommand and its two header encodings (JSON and the ROCKETMQ binary form).

Source of truth: apache/rocketmq ``RemotingCommand.java`` (headerDecode/encode) and
``RocketMQSerializable.java`` (rocketMQProtocolEncode/Decode). Responses are always encoded in
JSON, as a Java server does unless configured otherwise; requests of either type are decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import IntEnum

import orjson

from ferrymq.core.remoting.codes import (
    FLAG_ONEWAY,
    FLAG_RESPONSE,
    LANGUAGE_BY_CODE,
    LANGUAGE_BY_NAME,
    SERVER_VERSION,
)


class SerializeType(IntEnum):
    JSON = 0
    ROCKETMQ = 1


class HeaderError(ValueError):
    """A header that cannot be decoded: the frame is garbage and the connection must close."""


_BIN_FIXED = struct.Struct(">hbhiii")  # code, language, version, opaque, flag, remarkLen
_I32 = struct.Struct(">i")
_H16 = struct.Struct(">h")

BodyType = bytes | bytearray | memoryview


@dataclass(slots=True)
class RemotingCommand:
    """One request or response. ``ext_fields`` values are always strings on the wire."""

    code: int
    opaque: int = 0
    flag: int = 0
    remark: str | None = None
    ext_fields: dict[str, str] = field(default_factory=dict)
    body: BodyType = b""
    language: str = "JAVA"
    version: int = SERVER_VERSION
    serialize_type: SerializeType = SerializeType.JSON

    @property
    def is_response(self) -> bool:
        return bool(self.flag & FLAG_RESPONSE)

    @property
    def is_oneway(self) -> bool:
        return bool(self.flag & FLAG_ONEWAY)

    def response(
        self,
        code: int = 0,
        remark: str | None = None,
        ext_fields: dict[str, str] | None = None,
        body: BodyType = b"",
    ) -> RemotingCommand:
        """A response to this request: same opaque, response flag set."""
        return RemotingCommand(
            code=code,
            opaque=self.opaque,
            flag=FLAG_RESPONSE,
            remark=remark,
            ext_fields=ext_fields if ext_fields is not None else {},
            body=body,
        )

    # ---- header encoding -------------------------------------------------------------------

    def encode_header(self) -> bytes:
        if self.serialize_type == SerializeType.ROCKETMQ:
            return self._encode_binary_header()
        obj: dict[str, object] = {
            "code": self.code,
            "extFields": self.ext_fields,
            "flag": self.flag,
            "language": self.language,
            "opaque": self.opaque,
            "serializeTypeCurrentRPC": "JSON",
            "version": self.version,
        }
        if self.remark is not None:
            obj["remark"] = self.remark
        return orjson.dumps(obj)

    def _encode_binary_header(self) -> bytes:
        remark = self.remark.encode() if self.remark else b""
        parts = [
            _BIN_FIXED.pack(
                self.code,
                LANGUAGE_BY_NAME.get(self.language, 0),
                self.version,
                self.opaque,
                self.flag,
                len(remark),
            ),
            remark,
        ]
        ext = bytearray()
        for key, value in self.ext_fields.items():
            k = key.encode()
            v = str(value).encode()
            ext += _H16.pack(len(k)) + k + _I32.pack(len(v)) + v
        parts.append(_I32.pack(len(ext)))
        parts.append(bytes(ext))
        return b"".join(parts)


def decode_header(serialize_type: int, header: bytes | memoryview) -> RemotingCommand:
    """Decode a header of either serialization type; raise HeaderError on garbage."""
    if serialize_type == SerializeType.JSON:
        return _decode_json_header(header)
    if serialize_type == SerializeType.ROCKETMQ:
        return _decode_binary_header(header)
    raise HeaderError(f"unknown serialize type {serialize_type}")


def _decode_json_header(header: bytes | memoryview) -> RemotingCommand:
    try:
        obj = orjson.loads(header)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise HeaderError(f"header is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise HeaderError("header JSON is not an object")
    try:
        code = _int32(obj["code"], "code")
        ext = obj.get("extFields") or {}
        if not isinstance(ext, dict):
            raise HeaderError("extFields is not an object")
        language = obj.get("language", "JAVA")
        if isinstance(language, int):
            language = LANGUAGE_BY_CODE.get(language, "OTHER")
        remark = obj.get("remark")
        return RemotingCommand(
            code=code,
            opaque=_int32(obj.get("opaque", 0), "opaque"),
            flag=_int32(obj.get("flag", 0), "flag"),
            remark=remark if remark is None else str(remark),
            ext_fields={
                str(k): v if isinstance(v, str) else _jsonish(v) for k, v in ext.items() if v is not None
            },
            language=str(language),
            version=_int32(obj.get("version", 0), "version"),
            serialize_type=SerializeType.JSON,
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise HeaderError(f"bad header field: {exc}") from None


def _int32(value: object, name: str) -> int:
    """A header field Java declares ``int``: one that does not fit is garbage, as in Java (and a
    reply could not carry it back: orjson parses integers past 64 bits as floats and cannot
    encode them)."""
    number = int(value)  # type: ignore[call-overload]
    if not -(2**31) <= number < 2**31:
        raise HeaderError(f"header field {name}={value!r} is outside the int32 range")
    return number


def _jsonish(value: object) -> str:
    """Non-string extField values (sent by some clients) as Java's string form.

    (A JSON null is dropped by the caller: the field reads as absent, as Java's null does.)
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def _decode_binary_header(header: bytes | memoryview) -> RemotingCommand:
    buf = bytes(header)
    try:
        code, language, version, opaque, flag, remark_len = _BIN_FIXED.unpack_from(buf, 0)
        pos = _BIN_FIXED.size
        if remark_len < 0 or pos + remark_len > len(buf):
            raise HeaderError("remark length out of range")
        remark = buf[pos : pos + remark_len].decode() if remark_len else None
        pos += remark_len
        (ext_len,) = _I32.unpack_from(buf, pos)
        pos += 4
        end = pos + ext_len
        if ext_len < 0 or end > len(buf):
            raise HeaderError("extFields length out of range")
        ext: dict[str, str] = {}
        while pos < end:
            (klen,) = _H16.unpack_from(buf, pos)
            pos += 2
            key = buf[pos : pos + klen].decode()
            pos += klen
            (vlen,) = _I32.unpack_from(buf, pos)
            pos += 4
            if klen < 0 or vlen < 0 or pos + vlen > end:
                raise HeaderError("extFields entry out of range")
            ext[key] = buf[pos : pos + vlen].decode()
            pos += vlen
    except (struct.error, UnicodeDecodeError) as exc:
        raise HeaderError(f"bad binary header: {exc}") from None
    return RemotingCommand(
        code=code,
        opaque=opaque,
        flag=flag,
        remark=remark,
        ext_fields=ext,
        language=LANGUAGE_BY_CODE.get(language, "OTHER"),
        version=version,
        serialize_type=SerializeType.ROCKETMQ,
    )
