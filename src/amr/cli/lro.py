"""Waiting for ARM long-running operations, as az does: Azure-AsyncOperation, Location, or the
resource's own provisioningState, with ' - Running ..' progress on a terminal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import urljoin

import httpx

from amr.cli.responses import operation_error, read_json
from amr.errors import ArmError

TERMINAL_OK = {"succeeded"}
TERMINAL_FAILED = {"failed", "canceled", "cancelled"}


class Progress:
    """az-style ' - Running ..' progress on a terminal; silent otherwise."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream if stream is not None and _isatty(stream) else None
        self._ticks = 0

    def tick(self, status: str = "Running") -> None:
        if self._stream is None:
            return
        self._ticks += 1
        dots = "." * (self._ticks % 10 + 1)
        self._stream.write(f"\r - {status} {dots:<11}")
        self._stream.flush()

    def done(self) -> None:
        if self._stream is None or not self._ticks:
            return
        self._stream.write("\r" + " " * 40 + "\r")
        self._stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def is_lro(response: httpx.Response) -> bool:
    """Whether the response started a long-running operation (201/202 with a polling header)."""
    if response.status_code not in (201, 202):
        return False
    return bool(response.headers.get("Azure-AsyncOperation") or response.headers.get("Location"))


def provisioning_state(resource: Any) -> str:
    """The resource body's ``properties.provisioningState``, lower case; "" if it has none."""
    if not isinstance(resource, dict):
        return ""
    props = resource.get("properties")
    return str((props or {}).get("provisioningState") or "").lower() if isinstance(props, dict) else ""


class LroPoller:
    """Polls long-running operations until they finish, fail or time out.

    ``get`` sends an authenticated GET (url, api-version) and raises ArmError on 4xx/5xx; ``sleep``
    and ``clock`` let tests poll without real waiting; ``progress_stream`` receives progress when it
    is a terminal.
    """

    def __init__(
        self,
        get: Callable[[str, str], httpx.Response],
        base_url: str,
        *,
        poll_interval: float,
        lro_timeout: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        progress_stream: TextIO | None,
    ) -> None:
        self._get = get
        self._base_url = base_url
        self.poll_interval = poll_interval
        self.lro_timeout = lro_timeout
        self._sleep = sleep
        self._clock = clock
        self._progress_stream = progress_stream

    def wait_for(self, response: httpx.Response, api_version: str) -> Any:
        """Poll an LRO started by ``response`` until it finishes; return the final body if any.

        Azure-AsyncOperation wins over Location (as in azure-core's ARMPolling). Failed or Canceled
        operations raise ArmError with the operation's error.
        """
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        if not async_url and not (location and response.status_code == 202):
            return read_json(response)
        progress = Progress(self._progress_stream)
        deadline = self._clock() + self.lro_timeout
        try:
            if async_url:
                self._poll_async_operation(self._absolute(async_url), api_version, deadline, progress)
                return None
            assert location is not None
            return self._poll_location(self._absolute(location), api_version, deadline, progress)
        finally:
            progress.done()

    def poll_provisioning_state(self, url: str, api_version: str) -> Any:
        """Watch the resource at ``url`` until its provisioningState is terminal; return it."""
        progress = Progress(self._progress_stream)
        deadline = self._clock() + self.lro_timeout
        try:
            while True:
                self._pause(deadline, progress)
                resource = read_json(self._get(url, api_version))
                state = provisioning_state(resource)
                if state in TERMINAL_FAILED:
                    raise ArmError(
                        "ProvisioningFailed", f"provisioning ended in state {state.capitalize()}", status=400
                    )
                if state in TERMINAL_OK or not state:
                    return resource
        finally:
            progress.done()

    def _poll_async_operation(self, url: str, api_version: str, deadline: float, progress: Progress) -> None:
        while True:
            body = read_json(self._get(url, api_version)) or {}
            status = str(body.get("status", "")).lower()
            if status in TERMINAL_OK:
                return
            if status in TERMINAL_FAILED:
                raise operation_error(body, str(body.get("status")))
            self._pause(deadline, progress)

    def _poll_location(self, url: str, api_version: str, deadline: float, progress: Progress) -> Any:
        while True:
            response = self._get(url, api_version)
            if response.status_code != 202:
                return read_json(response)
            self._pause(deadline, progress)

    def _pause(self, deadline: float, progress: Progress) -> None:
        if self._clock() >= deadline:
            raise ArmError(
                "OperationTimedOut",
                f"the operation did not finish within {self.lro_timeout:.0f} seconds; "
                "it may still complete: check with 'show'.",
                status=408,
            )
        progress.tick()
        # Deliberately ignore Retry-After: polling locally every 0.25 s keeps the CLI snappy.
        self._sleep(self.poll_interval)

    def _absolute(self, url: str) -> str:
        return urljoin(self._base_url + "/", url)
