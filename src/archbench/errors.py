"""archbench's own exceptions: every error a user can cause is one of these, with a one-line message."""

from __future__ import annotations


class ArchbenchError(Exception):
    """Base class for errors a user can cause (bad config, unknown name, missing file)."""


class ArchitectureError(ArchbenchError, ValueError):
    """An Architecture field has a value that is not allowed.

    The message is one line naming the field, the value and what is allowed.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid architecture: {field}={value!r}: {allowed}")


class UnknownNameError(ArchbenchError, KeyError):
    """A name looked up in a registry is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want the plain line
        return str(self.args[0])


class ConfigError(ArchbenchError, ValueError):
    """A config file or override is malformed, unsafe or refers to something that does not exist."""


class SearchStopped(ArchbenchError):
    """A search ended before its end (a stop signal, a lost cluster) with everything that finished recorded;
    rerunning the same command resumes. The message is the whole line; ``exit_status`` is the CLI's."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status
