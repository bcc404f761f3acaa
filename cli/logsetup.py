"""How a ferrymq process logs: text (the default) or one JSON object per line, and a level per
component.

Levels: ``--log-level`` / ``logLevel`` / ``FERRYMQ_LOG_LEVEL`` is a comma-separated list of
``LEVEL`` (the root) and ``logger=LEVEL`` (a component: ``ferrymq.kafka``, ``ferrymq.store``,
``ferrymq.remoting``, ``ferrymq.broker``, ...). Format: ``--log-format`` / ``logFormat`` /
``FERRYMQ_LOG_FORMAT``, ``text`` or ``json``. The command line wins over the environment, which
wins over broker.conf.

A JSON line holds ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``exc`` with a
traceback, and whichever of :data:`EXTRA_FIELDS` the log site passed as ``extra=``.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: what log sites pass in ``extra=`` that a JSON line carries
EXTRA_FIELDS = ("peer", "code", "api_key", "topic", "group", "client_id", "listener", "reason")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in EXTRA_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _level(text: str) -> str:
    level = text.strip().upper()
    if level not in LEVELS:
        raise ValueError(f"log level {text.strip()!r} is not one of {', '.join(LEVELS)}")
    return level


def parse_levels(spec: str) -> tuple[str | None, dict[str, str]]:
    """``"INFO,ferrymq.kafka=DEBUG"`` as (root level or None, {logger: level}); ValueError if bad."""
    root: str | None = None
    per: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        name, eq, level = part.partition("=")
        if eq:
            per[name.strip()] = _level(level)
        else:
            root = _level(name)
    return root, per


def conf_settings(path: Path | None) -> dict[str, str]:
    """logFormat and logLevel of a broker.conf, read before the broker's config is (its warnings
    are logged in the chosen format)."""
    if path is None:
        return {}
    from ferrymq.core.config import parse_properties

    try:
        raw = parse_properties(path.read_text())
    except OSError:
        return {}  # the broker's own read reports it
    return {k: raw[k] for k in ("logFormat", "logLevel") if k in raw}


def resolve(cli_format: str | None, cli_level: str | None, conf: Path | None) -> tuple[str, str]:
    """The format and level spec in force: command line, then environment, then broker.conf."""
    settings = conf_settings(conf)
    fmt = cli_format or os.environ.get("FERRYMQ_LOG_FORMAT") or settings.get("logFormat") or "text"
    level = cli_level or os.environ.get("FERRYMQ_LOG_LEVEL") or settings.get("logLevel") or "INFO"
    return fmt, level


def configure_logging(fmt: str, level_spec: str, stream: IO[str]) -> None:
    """Set the root handler (replacing any) and every level; ValueError names a bad setting."""
    fmt = fmt.strip().lower()
    if fmt not in ("text", "json"):
        raise ValueError(f"log format {fmt!r} is not text or json")
    root_level, per = parse_levels(level_spec)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(root_level or "INFO")
    for name, level in per.items():
        logging.getLogger(name).setLevel(level)
