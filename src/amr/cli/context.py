"""What a command handler gets: the API client (created on first use), streams and small helpers."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from amr.cli.client import DEFAULT_POLL_INTERVAL, ArmClient
from amr.cli.credentials import Credentials, load_credentials
from amr.cli.errors import CliError
from amr.settings import Settings, load_settings

CONFIRM_PROMPT = "Are you sure you want to perform this operation? (y/n): "


@dataclass
class Context:
    """Per-invocation state shared by all command handlers.

    ``transport``, ``poll_interval``, ``sleep`` and ``run_process`` are seams for tests; in normal use
    they stay at their defaults and the client talks HTTPS to the API named in credentials.json.
    """

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    settings_factory: Callable[[], Settings] = load_settings
    transport: httpx.BaseTransport | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    sleep: Callable[[float], None] | None = None
    quiet: bool = False
    run_process: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run  # other programs (az)
    _settings: Settings | None = None
    _credentials: Credentials | None = None
    _client: ArmClient | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self.settings_factory()
        return self._settings

    @property
    def credentials(self) -> Credentials:
        if self._credentials is None:
            s = self.settings
            self._credentials = load_credentials(s.credentials_file, s.home)
        return self._credentials

    @property
    def client(self) -> ArmClient:
        if self._client is None:
            kwargs: dict[str, Any] = {
                "transport": self.transport,
                "poll_interval": self.poll_interval,
                "progress_stream": self.stderr,
            }
            if self.sleep is not None:
                kwargs["sleep"] = self.sleep
            self._client = ArmClient(self.credentials, **kwargs)
        return self._client

    @property
    def ca_file(self) -> str | None:
        """The CA that verifies amr's server certificate; None means the system's trusted CAs (a
        user-supplied certificate without tls.ca_file)."""
        return self.credentials.ca_file or None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def warn(self, message: str) -> None:
        if self.quiet:
            return
        self.stderr.write(f"WARNING: {message}\n")
        self.stderr.flush()

    def confirm(self, yes: bool) -> None:
        """Ask az's confirmation question unless --yes; refuse when there is no terminal to ask on."""
        if yes:
            return
        if not _isatty(self.stdin):
            raise CliError("Unable to prompt for confirmation as no tty available. Use --yes.")
        self.stderr.write(CONFIRM_PROMPT)
        self.stderr.flush()
        answer = self.stdin.readline()
        if answer.strip().lower() not in ("y", "yes"):
            raise CliError("Operation cancelled.")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


Handler = Callable[[Context, argparse.Namespace], Any]
