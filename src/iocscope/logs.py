"""Logging setup: structlog key/value events on stderr, with secrets redacted.

Every configured secret value (vendor keys, the Redis URL) is replaced by
``[redacted]`` in every event field before rendering, as a second line of defence
behind the rule that code never logs a secret in the first place.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog
from pydantic import SecretStr

from iocscope.config import Settings

REDACTED = "[redacted]"


class SecretRedactor:
    """A structlog processor that masks known secret values in event fields."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Short values would mask ordinary words; real keys are long.
        self._secrets = sorted(
            {s for s in secrets if len(s) >= 6}, key=len, reverse=True
        )

    def __call__(
        self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if not self._secrets:
            return event_dict
        for key, value in event_dict.items():
            event_dict[key] = self._mask(value)
        return event_dict

    def _mask(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self._secrets:
                value = value.replace(secret, REDACTED)
            return value
        if isinstance(value, dict):
            return {k: self._mask(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._mask(v) for v in value]
        return value


def secret_values(settings: Settings) -> list[str]:
    """Return the plain values of every secret field that is set."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    return values


class _StderrPrinter:
    """A structlog logger that writes to whatever ``sys.stderr`` is at call time.

    Binding the stream once would keep writing to a stream that a test runner or
    an embedding program has since replaced and closed.
    """

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


class _StderrHandler(logging.Handler):
    """A stdlib handler that writes to whatever ``sys.stderr`` is at emit time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def _printer(*args: Any) -> _StderrPrinter:
    return _StderrPrinter()


def configure_logging(settings: Settings, *, level: int = logging.WARNING) -> None:
    """Send structlog and stdlib logging to stderr as key=value lines."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            SecretRedactor(secret_values(settings)),
            structlog.processors.KeyValueRenderer(
                key_order=["timestamp", "level", "event"], sort_keys=False
            ),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_printer,
        cache_logger_on_first_use=False,
    )
