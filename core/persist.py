"""Small JSON config files written atomically (temp file, fsync, rename)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name of its own per writer: two threads writing the same file never share a temp file
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """The file's JSON, or None if it does not exist (a half-written .tmp is ignored)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
