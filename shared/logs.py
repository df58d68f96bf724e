"""JSON-lines logging in the Cloud Logging structured format.

Each record is one JSON object on stdout with ``severity``, ``message``, ``time``,
``logging.googleapis.com/sourceLocation`` and ``logging.googleapis.com/labels`` (the
function name and the event id being handled). Cloud Run/Functions gen2 parse these lines
into structured entries; locally they stay greppable.

The event id label comes from a :class:`contextvars.ContextVar` bound by the runtime for the
duration of one event, so library code only ever calls ``logging.getLogger(__name__)``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from types import MappingProxyType

_labels: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "qs_log_labels", default=MappingProxyType({})
)

_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}

# Attributes every LogRecord has; anything else passed via ``extra=`` is logged as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_SECRET_HINTS = ("password", "secret", "token", "authorization", "api_key")


class CloudLoggingFormatter(logging.Formatter):
    """Format a record as one Cloud Logging JSON line.

    ``function`` labels every line, from every thread; per-event labels come from the
    context of the thread handling the event.
    """

    def __init__(self, function: str | None = None) -> None:
        super().__init__()
        self.function = function

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "logger": record.name,
            "logging.googleapis.com/sourceLocation": {
                "file": record.pathname,
                "line": record.lineno,
                "function": record.funcName,
            },
        }
        labels = dict(_labels.get())
        if self.function:
            labels.setdefault("function", self.function)
        if labels:
            entry["logging.googleapis.com/labels"] = labels
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_"):
                continue
            entry[key] = "[redacted]" if any(h in key.lower() for h in _SECRET_HINTS) else value
        if record.exc_info:
            entry["message"] = f"{entry['message']}\n{self.formatException(record.exc_info)}"
            entry["@type"] = (
                "type.googleapis.com/google.devtools.clouderrorreporting.v1beta1.ReportedErrorEvent"
            )
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(function_name: str, level: str = "INFO", stream=None) -> None:
    """Install the JSON formatter on the root logger (idempotent) and label the function."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_qs_json", False)), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stdout)
        handler._qs_json = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    handler.setFormatter(CloudLoggingFormatter(function_name))
    root.setLevel(level.upper())


@contextlib.contextmanager
def log_labels(**labels: str | None) -> Iterator[None]:
    """Add labels (e.g. ``event_id``) to every log line written inside the block."""
    merged = {**_labels.get(), **{k: str(v) for k, v in labels.items() if v is not None}}
    token = _labels.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _labels.reset(token)
