"""pysyncobj, imported without its side effect: its win_inet_pton module replaces
``socket.inet_ntop`` with a Windows-only version on every OS (pysyncobj 0.3.x), which breaks
every other user of it in the process. pysyncobj itself never calls inet_ntop, so the original
is put back."""

import socket

_inet_ntop = socket.inet_ntop
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # noqa: E402

socket.inet_ntop = _inet_ntop

__all__ = ["FAIL_REASON", "SyncObj", "SyncObjConf", "replicated"]
