"""Small JSON config files written atomically (temp file, fsync, rename, directory fsync).

A failed write or sync raises and leaves the previous file in place; each attempt writes a
whole new file, so retrying after a failure is safe (unlike syncing the same pages again)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from ferrymq.core.store import fileio


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer: two threads writing the same file never share a temp file
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        fileio.fsync(fh.fileno())
    os.replace(tmp, path)
    fileio.fsync_dir(path.parent)  # the rename itself must survive a power loss


def read_json(path: Path) -> Any:
    """The file's JSON, or None if it does not exist (a half-written .tmp is ignored)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
