"""The RocketMQ remoting protocol, sans-IO: pure encode/decode over bytes.

Shared by the broker (``ferrymq.core.broker``), the name server (``ferrymq.namesrv``) and the
Python client (``ferrymq.client``). Nothing here touches sockets, files or the event loop.
"""

from ferrymq.core.remoting.codes import LanguageCode, RequestCode, ResponseCode
from ferrymq.core.remoting.command import RemotingCommand, SerializeType
from ferrymq.core.remoting.frame import FrameDecoder, FrameError, encode_frame

__all__ = [
    "FrameDecoder",
    "FrameError",
    "LanguageCode",
    "RemotingCommand",
    "RequestCode",
    "ResponseCode",
    "SerializeType",
    "encode_frame",
]
