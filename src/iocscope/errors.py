"""Exceptions raised by iocscope.

The hierarchy::

    IocscopeError
    ├── InvalidInput            bad input from a user; maps to HTTP 4xx / CLI exit 1
    │   ├── InvalidObservable   an observable that cannot be parsed or is rejected
    │   └── InvalidTLP          an unknown TLP label
    ├── SourceFailure           one source failed; the engine turns it into a status
    │   ├── UpstreamError       the vendor answered with an error or garbage
    │   ├── UpstreamTimeout     the vendor did not answer in time
    │   └── RateLimited         the vendor (or our own budget) refused for now
    ├── FeedError               a feed file or download could not be used
    └── ConfigError             a setting is missing or invalid

Every error carries structured fields next to its message, so the API and the CLI can
render them without parsing text.
"""

from __future__ import annotations


class IocscopeError(Exception):
    """Root of every error that iocscope raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(IocscopeError):
    """Input that a caller can fix: names the field, the value and the fix."""

    code = "invalid_input"

    def __init__(self, message: str, *, field: str, value: object = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


class InvalidObservable(InvalidInput):
    code = "invalid_observable"

    def __init__(self, message: str, *, value: object, field: str = "value") -> None:
        super().__init__(message, field=field, value=value)


class InvalidTLP(InvalidInput):
    code = "invalid_tlp"

    def __init__(self, message: str, *, value: object) -> None:
        super().__init__(message, field="tlp", value=value)


class SourceFailure(IocscopeError):
    """A source could not produce a result. Never a verdict of its own."""

    code = "source_error"


class UpstreamError(SourceFailure):
    """The vendor responded, but not with something we can use (4xx, 5xx, garbage)."""

    code = "upstream_error"

    def __init__(self, message: str, *, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class UpstreamTimeout(SourceFailure):
    code = "upstream_timeout"


class RateLimited(SourceFailure):
    """The vendor or our own budget refused the call; retry after ``retry_after_s``."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FeedError(IocscopeError):
    code = "feed_error"


class ConfigError(IocscopeError):
    code = "config_error"
