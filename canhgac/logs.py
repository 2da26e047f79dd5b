"""Logging set-up shared by every process.

Logs are one line per record (``time level logger: message``) on stderr, or JSON
lines with ``--log-format json``. A filter masks anything that looks like a
bearer token or a secret so credentials never reach a log file.
"""

from __future__ import annotations

import logging
import re
import sys

import orjson

_SECRET = re.compile(
    r"(?i)(bearer\s+|token[\"'=:\s]+|secret[\"'=:\s]+|api[_-]?key[\"'=:\s]+|password[\"'=:\s]+)"
    r"([A-Za-z0-9._~+/=-]{6,})"
)


def redact(text: str) -> str:
    return _SECRET.sub(lambda m: m.group(1) + "***", text)


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        red = redact(msg)
        if red != msg:
            record.msg, record.args = red, None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "@timestamp": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z",
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error.stack_trace"] = self.formatException(record.exc_info)
        return orjson.dumps(doc).decode()


def setup(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")
        )
    handler.addFilter(_RedactFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.Formatter.converter = __import__("time").gmtime
    for noisy in ("aiohttp.access", "elastic_transport.transport", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
