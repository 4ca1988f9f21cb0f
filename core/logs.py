"""Structured JSON logging shared by every process, with the current request id on each line."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from core.telemetry import current_span_id, current_trace_id

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Never written out, whatever a caller passes in `extra=`.
_REDACTED_KEYS = frozenset(
    {"password", "secret", "token", "authorization", "cookie", "card_number", "cvc"}
)


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _REDACTED_KEYS)


_factory_installed = False


def install_request_id_factory() -> None:
    """Stamp the current request id, and the current trace and span ids when tracing is on,
    on every LogRecord when it is created.

    At creation, not at formatting: a handler may format later (a queue, a test's capture),
    when the request's context is gone.
    """
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get()
        trace_id = current_trace_id()
        if trace_id is not None:
            record.trace_id = trace_id
            record.span_id = current_span_id()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key in _STANDARD_ATTRS or key == "request_id" or key.startswith("_"):
                continue
            entry[key] = "[redacted]" if _is_secret_key(key) else value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        return f"{line} [request_id={request_id}]" if request_id else line


def configure_logging(level: str = "INFO", fmt: str = "json", *, process: str = "emporium") -> None:
    """Send all logs (ours, uvicorn's, temporalio's, SQLAlchemy's) to stderr in one format."""
    install_request_id_factory()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(_ProcessFilter(process))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Our middleware writes one access line per request with the request id; uvicorn's would
    # duplicate it without one.
    logging.getLogger("uvicorn.access").disabled = True


class _ProcessFilter(logging.Filter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.process_name = process

    def filter(self, record: logging.LogRecord) -> bool:
        record.proc = self.process_name
        return True
