"""Exceptions raised by ``ferrymq.client``.

Two families, both under :class:`MQError`:

* :class:`BrokerError` -- a broker or name server answered with an error response code; the
  code and the server's remark are kept verbatim (``ResponseCode`` numbers, as Java's
  ``MQBrokerException`` carries them).
* :class:`ClientError` -- a problem found on this side: invalid arguments
  (:class:`ValidationError`, also a ``ValueError``), a client used before ``start()`` or after
  ``shutdown()``, no route for a topic, or the network (:class:`NetworkError`: cannot connect,
  connection closed, request timed out).
"""

from __future__ import annotations

from ferrymq.core.remoting.codes import ResponseCode


class MQError(Exception):
    """Base of every error this client raises."""


class ClientError(MQError):
    """A local problem: bad arguments, wrong client state, no route, network failure."""


class ValidationError(ClientError, ValueError):
    """An argument the client refuses before anything is sent (topic name, body size, ...)."""


class NetworkError(ClientError):
    """Cannot connect, the connection closed, or a request timed out."""


class BrokerError(MQError):
    """An error response: ``code`` is the remoting response code, ``remark`` the server's text."""

    def __init__(self, code: int, remark: str | None = None, *, addr: str | None = None) -> None:
        self.code = int(code)
        self.remark = remark or ""
        self.addr = addr
        try:
            name = ResponseCode(self.code).name
        except ValueError:
            name = "UNKNOWN"
        where = f" from {addr}" if addr else ""
        super().__init__(f"CODE: {self.code} ({name}){where} DESC: {self.remark}")

    def __reduce__(self) -> tuple[type[BrokerError], tuple[int, str]]:
        return (type(self), (self.code, self.remark))
