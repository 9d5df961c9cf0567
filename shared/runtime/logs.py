"""One JSON line per log record, in the shape Cloud Logging reads (severity, message, labels).
Only the fields the pipeline passes in `extra` are added: never message bodies or image bytes."""

from __future__ import annotations

import json
import logging
import sys

FIELDS = ("jobId", "clothId", "userId", "stage", "ms", "code", "hop")


class CloudLoggingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"severity": record.levelname, "message": record.getMessage(), "logger": record.name}
        entry.update({name: getattr(record, name) for name in FIELDS if hasattr(record, name)})
        if record.exc_info:
            entry["message"] += "\n" + self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs full request URLs, tokens included
