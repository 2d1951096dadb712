"""Errors a person can act on.

Every error raised for bad input, bad config or missing set-up derives from
`PlatformError`; the console command prints its message as one paragraph (what was
wrong, where, what to do) and exits non-zero, without a stack trace.
"""

from __future__ import annotations


class PlatformError(Exception):
    """Base class: the message says what is wrong and what to do about it."""

    exit_code = 2


class ConfigError(PlatformError):
    """A config key or value is invalid; the message names the key and its source."""


class SetupError(PlatformError):
    """Something the platform needs is missing (Java, jars, a running catalog server)."""


class CatalogServerError(PlatformError):
    """The catalog server could not be started, stopped or reached."""


class ConcurrencyError(PlatformError):
    """Another run holds the step, or concurrent writers kept winning a Delta table's commits."""

    exit_code = 3


class NotFound(PlatformError):
    """A key the caller asked for does not exist (e.g. an athlete with no online row): HTTP 404."""

    def __init__(self, message: str, keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.keys = keys


class InvalidRequest(PlatformError):
    """A request's own fields are wrong (unknown or missing name, bad value): HTTP 422.

    `field` names the field at fault, so an API can point at it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
