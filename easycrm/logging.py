"""One JSON object per log line, carrying the correlation ids (job_id, batch_id) passed in `extra`."""

from __future__ import annotations

import json
import logging

CORRELATION_FIELDS = (
    "job_id",
    "batch_id",
    "chat_ref",
    "batch_number",
    "attempt",
    "duration_ms",
    "status_code",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CORRELATION_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = str(value) if not isinstance(value, (int, float)) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
