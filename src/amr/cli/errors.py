"""The CLI's own errors: what it reports as ``ERROR: <message>``, and an API it cannot reach."""

from __future__ import annotations

from amr.errors import AmrError


class CliError(AmrError):
    """An error the CLI reports as ``ERROR: <message>`` with exit code 1."""


class ApiUnreachable(CliError):
    """The amr API could not be reached (not running, wrong port, TLS failure)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot reach the amr API at {url}: {reason}. Start it with 'amr serve --detach' or 'make run'."
        )
        self.url = url
        self.reason = reason
