"""Logging: JSON lines in DATA_DIR/logs/kaizen.log, readable lines on stderr."""

import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

_RESERVED = frozenset(vars(logging.makeLogRecord({})))


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def setup_logging(log_path: Path, level: str) -> None:
    """Route `kaizen` and `aiohttp` loggers to both sinks. Safe to call twice."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    file_handler.setFormatter(JsonLines())
    stderr_handler = logging.StreamHandler(sys.stderr)
    stderr_handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    for name in ("kaizen", "aiohttp"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            logger.removeHandler(old)
            old.close()
        logger.setLevel(level)
        logger.addHandler(file_handler)
        logger.addHandler(stderr_handler)
        logger.propagate = False
