"""Log formatters: one JSON object per line (`QMS_LOG_FORMAT=json`), or text with the fields as key=value.

Structured fields travel as `extra=` (`event_id`, `user_id`, `ticket`,
`jti`, `action`, `actor_id`, ...). Nothing that grants access (tokens, keys,
passwords) is passed as a field: callers log the token's `jti`, never the token.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


def structured_fields(record: logging.LogRecord) -> dict:
    """The `extra=` fields of a record, in the order they were given."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", ...fields}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **structured_fields(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)


class KeyValueFormatter(logging.Formatter):
    """The plain format, followed by the record's fields as `key=value`."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = structured_fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{key}={value}" for key, value in fields.items())
        head, newline, trace = text.partition("\n")  # keep a traceback below the line
        return f"{head} {pairs}{newline}{trace}"
