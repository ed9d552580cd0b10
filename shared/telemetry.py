"""Structured logs carrying the invocation id, and Application Insights when configured."""

from __future__ import annotations

import contextvars
import json
import logging
import threading
from typing import Any

_invocation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("folio_invocation_id", default=None)
_configured = False
_lock = threading.Lock()


def current_invocation_id() -> str | None:
    return _invocation_id.get()


def bind_invocation(invocation_id: str | None) -> contextvars.Token[str | None]:
    return _invocation_id.set(invocation_id)


def unbind_invocation(token: contextvars.Token[str | None]) -> None:
    _invocation_id.reset(token)


def _install_record_factory() -> None:
    """Every log record created while an invocation is bound carries its id, whatever the handler."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.invocation_id = _invocation_id.get()
        return record

    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log pipelines and `jq` want."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        invocation_id = getattr(record, "invocation_id", None)
        if invocation_id:
            entry["invocationId"] = invocation_id
        for key in ("event", "status", "durationMs", "function"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Any, *, json_console: bool = False) -> None:
    """Once per process, on first use (never at import): invocation ids on every record, and
    Azure Monitor export when APPLICATIONINSIGHTS_CONNECTION_STRING is set."""
    global _configured
    if _configured:
        return
    with _lock:
        if _configured:
            return
        root = logging.getLogger()
        root.setLevel(settings.log_level)
        # The Azure SDK logs every HTTP request and response at INFO; that is noise, not signal.
        logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(logging.WARNING)
        _install_record_factory()
        if json_console:
            handler = logging.StreamHandler()
            handler.setFormatter(JsonFormatter())
            root.addHandler(handler)
        secret = settings.applicationinsights_connection_string
        if secret is not None and secret.is_set():
            _configure_azure_monitor(secret.reveal(), settings.azure_client_id)
        _configured = True


def _configure_azure_monitor(connection_string: str, client_id: str | None) -> None:
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
    except ImportError:
        logging.getLogger(__name__).warning(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is set but azure-monitor-opentelemetry is not installed"
        )
        return
    # Application Insights has local (key) auth disabled in Bicep: telemetry is sent with Entra.
    from shared.azure_credential import get_credential

    configure_azure_monitor(connection_string=connection_string, credential=get_credential(client_id), logger_name="")
