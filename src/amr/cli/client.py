"""The CLI's HTTPS client of the amr API: credentials, bearer tokens, ARM calls and LRO polling.

Everything the CLI knows about the server goes through ``ArmClient``; it never reads the store.
httpx errors are translated here into ``ApiUnreachable`` / ``ArmError`` so that the command layer only
sees amr's own exceptions.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urljoin

import httpx

from amr.errors import AmrError, ArmError

log = logging.getLogger(__name__)

CACHE_API_VERSION = "2025-07-01"
RESOURCES_API_VERSION = "2024-03-01"
ARM_SCOPE = "https://management.azure.com/.default"
DEFAULT_POLL_INTERVAL = 0.25
DEFAULT_LRO_TIMEOUT = 600.0

_TERMINAL_OK = {"succeeded"}
_TERMINAL_FAILED = {"failed", "canceled", "cancelled"}


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


@dataclass(frozen=True)
class Credentials:
    """The local admin principal written by ``amr serve`` to AMR_HOME/credentials.json."""

    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    management_endpoint: str
    ca_file: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Credentials:
        return cls(
            tenant_id=str(data["tenantId"]),
            subscription_id=str(data["subscriptionId"]),
            client_id=str(data["clientId"]),
            client_secret=str(data["clientSecret"]),
            management_endpoint=str(data["managementEndpoint"]).rstrip("/"),
            ca_file=str(data.get("caFile") or ""),
        )


def load_credentials(credentials_file: Path, home: Path) -> Credentials:
    """Read credentials.json, or explain how to create it."""
    try:
        raw = credentials_file.read_text()
    except FileNotFoundError as e:
        raise CliError(f"amr is not set up in {home}: run 'amr serve --detach' (or 'make run') first.") from e
    except OSError as e:
        raise CliError(f"cannot read {credentials_file}: {e.strerror or e}") from e
    try:
        return Credentials.from_dict(json.loads(raw))
    except (ValueError, KeyError, TypeError) as e:
        raise CliError(
            f"{credentials_file} is not valid amr credentials ({e}); "
            "remove it and run 'amr serve --detach' (or 'make run') again."
        ) from e


@dataclass
class _Token:
    value: str
    expires_on: float  # epoch seconds


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


class ArmClient:
    """A small ARM client for the amr API.

    ``transport`` lets tests substitute an ``httpx.MockTransport``; ``sleep`` and ``clock`` let them
    poll LROs without real waiting. ``progress_stream`` (normally stderr) receives az-style progress
    when it is a terminal.
    """

    def __init__(
        self,
        credentials: Credentials,
        *,
        transport: httpx.BaseTransport | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        lro_timeout: float = DEFAULT_LRO_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        progress_stream: TextIO | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.credentials = credentials
        self.base_url = credentials.management_endpoint
        self.poll_interval = poll_interval
        self.lro_timeout = lro_timeout
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._progress_stream = progress_stream
        self._token: _Token | None = None
        verify: Any = True
        if credentials.ca_file and transport is None:
            verify = _ssl_context(credentials.ca_file)
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            verify=verify,
            timeout=timeout,
            headers={"User-Agent": "amr-cli", "Accept": "application/json"},
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArmClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- paths -----------------------------------------------------------------------------------

    @property
    def subscription_id(self) -> str:
        return self.credentials.subscription_id

    def group_path(self, group: str | None = None) -> str:
        base = f"/subscriptions/{self.subscription_id}/resourcegroups"
        return base if group is None else f"{base}/{group}"

    def cluster_path(self, group: str | None, name: str | None = None) -> str:
        if group is None:
            return f"/subscriptions/{self.subscription_id}/providers/Microsoft.Cache/redisEnterprise"
        rg = f"/subscriptions/{self.subscription_id}/resourceGroups/{group}"
        base = f"{rg}/providers/Microsoft.Cache/redisEnterprise"
        return base if name is None else f"{base}/{name}"

    def database_path(self, group: str, cluster: str, database: str | None = None) -> str:
        base = f"{self.cluster_path(group, cluster)}/databases"
        return base if database is None else f"{base}/{database}"

    # -- auth ------------------------------------------------------------------------------------

    def token(self) -> tuple[str, float]:
        """Return a bearer token and its expiry (epoch seconds), cached in memory for this process."""
        now = self._wall_clock()
        if self._token is not None and self._token.expires_on - 60 > now:
            return self._token.value, self._token.expires_on
        c = self.credentials
        url = f"/{c.tenant_id}/oauth2/v2.0/token"
        form = {
            "grant_type": "client_credentials",
            "client_id": c.client_id,
            "client_secret": c.client_secret,
            "scope": ARM_SCOPE,
        }
        response = self._send("POST", url, data=form)
        if response.status_code != 200:
            raise _error_from_response(response, default_code="AuthenticationFailed")
        try:
            body = response.json()
            value = str(body["access_token"])
            expires_in = float(body.get("expires_in", 3599))
        except (ValueError, KeyError, TypeError) as e:
            raise CliError(f"the amr API returned an unreadable token response: {e}") from e
        self._token = _Token(value, now + expires_in)
        return self._token.value, self._token.expires_on

    # -- raw requests ----------------------------------------------------------------------------

    def _send(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as e:
            raise ApiUnreachable(self.base_url, _reason(e)) from e
        except httpx.HTTPError as e:  # e.g. invalid URL
            raise CliError(f"request to the amr API failed: {e}") from e
        log.debug("%s %s -> %s", method, _redact(str(response.request.url)), response.status_code)
        return response

    def request(
        self,
        method: str,
        url: str,
        *,
        api_version: str | None = CACHE_API_VERSION,
        json_body: Any = None,
    ) -> httpx.Response:
        """Send an authenticated ARM request; raise ArmError on 4xx/5xx."""
        token, _ = self.token()
        target = httpx.URL(url)
        # Never pass params= to httpx: it would replace a nextLink's or poll URL's own query string.
        if api_version and "api-version" not in target.params:
            target = target.copy_add_param("api-version", api_version)
        kwargs: dict[str, Any] = {"headers": {"Authorization": f"Bearer {token}"}}
        if json_body is not None:
            kwargs["json"] = json_body
        response = self._send(method, target, **kwargs)
        if response.status_code == 401:
            # The API may have restarted with a new signing key: one retry with a fresh token.
            self._token = None
            kwargs["headers"] = {"Authorization": f"Bearer {self.token()[0]}"}
            response = self._send(method, target, **kwargs)
        if response.status_code >= 400:
            raise _error_from_response(response)
        return response

    # -- high-level verbs -------------------------------------------------------------------------

    def get(self, url: str, *, api_version: str = CACHE_API_VERSION) -> Any:
        return _json(self.request("GET", url, api_version=api_version))

    def get_or_none(self, url: str, *, api_version: str = CACHE_API_VERSION) -> Any:
        try:
            return self.get(url, api_version=api_version)
        except ArmError as e:
            if e.status == 404:
                return None
            raise

    def list(self, url: str, *, api_version: str = CACHE_API_VERSION) -> list[Any]:
        return list(self.iter_pages(url, api_version=api_version))

    def iter_pages(self, url: str, *, api_version: str = CACHE_API_VERSION) -> Iterator[Any]:
        next_url: str | None = url
        seen: set[str] = set()
        while next_url:
            if next_url in seen:  # a server bug must not make the CLI loop forever
                raise CliError(f"the amr API returned a nextLink loop at {_redact(next_url)}")
            seen.add(next_url)
            body = _json(self.request("GET", next_url, api_version=api_version)) or {}
            yield from body.get("value") or []
            next_url = body.get("nextLink") or None

    def put(self, url: str, body: Any, *, api_version: str = CACHE_API_VERSION, wait: bool = True) -> Any:
        return self._mutate("PUT", url, body, api_version=api_version, wait=wait)

    def patch(self, url: str, body: Any, *, api_version: str = CACHE_API_VERSION, wait: bool = True) -> Any:
        return self._mutate("PATCH", url, body, api_version=api_version, wait=wait)

    def delete(self, url: str, *, api_version: str = CACHE_API_VERSION, wait: bool = True) -> None:
        response = self.request("DELETE", url, api_version=api_version)
        if wait:
            self.wait_for(response, api_version=api_version)

    def post(
        self, url: str, body: Any = None, *, api_version: str = CACHE_API_VERSION, wait: bool = True
    ) -> Any:
        """POST an action; for an LRO the result is the Location's final body (if any)."""
        response = self.request("POST", url, api_version=api_version, json_body=body)
        if not _is_lro(response):
            return _json(response)
        if not wait:
            return None
        return self.wait_for(response, api_version=api_version)

    def _mutate(self, method: str, url: str, body: Any, *, api_version: str, wait: bool) -> Any:
        response = self.request(method, url, api_version=api_version, json_body=body)
        if not wait:
            return None if _is_lro(response) else _json(response)
        if not _is_lro(response):
            result = _json(response)
            if response.status_code == 201 and _provisioning_state(result) not in _TERMINAL_OK | {""}:
                # No polling header: like azure-core, watch the resource's own provisioningState.
                return self._poll_provisioning_state(url, api_version)
            return result
        self.wait_for(response, api_version=api_version)
        return self.get(url, api_version=api_version)

    def _poll_provisioning_state(self, url: str, api_version: str) -> Any:
        progress = Progress(self._progress_stream)
        deadline = self._clock() + self.lro_timeout
        try:
            while True:
                self._pause(deadline, progress)
                resource = self.get(url, api_version=api_version)
                state = _provisioning_state(resource)
                if state in _TERMINAL_FAILED:
                    raise ArmError(
                        "ProvisioningFailed", f"provisioning ended in state {state.capitalize()}", status=400
                    )
                if state in _TERMINAL_OK or not state:
                    return resource
        finally:
            progress.done()

    # -- long-running operations ------------------------------------------------------------------

    def wait_for(self, response: httpx.Response, *, api_version: str = CACHE_API_VERSION) -> Any:
        """Poll an LRO started by ``response`` until it finishes; return the final body if any.

        Azure-AsyncOperation wins over Location (as in azure-core's ARMPolling). Failed or Canceled
        operations raise ArmError with the operation's error.
        """
        async_url = response.headers.get("Azure-AsyncOperation")
        location = response.headers.get("Location")
        if not async_url and not (location and response.status_code == 202):
            return _json(response)
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

    def _poll_async_operation(self, url: str, api_version: str, deadline: float, progress: Progress) -> None:
        while True:
            body = _json(self.request("GET", url, api_version=api_version)) or {}
            status = str(body.get("status", "")).lower()
            if status in _TERMINAL_OK:
                return
            if status in _TERMINAL_FAILED:
                raise _operation_error(body, str(body.get("status")))
            self._pause(deadline, progress)

    def _poll_location(self, url: str, api_version: str, deadline: float, progress: Progress) -> Any:
        while True:
            response = self.request("GET", url, api_version=api_version)
            if response.status_code != 202:
                return _json(response)
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
        return urljoin(self.base_url + "/", url)


def _provisioning_state(resource: Any) -> str:
    if not isinstance(resource, dict):
        return ""
    props = resource.get("properties")
    return str((props or {}).get("provisioningState") or "").lower() if isinstance(props, dict) else ""


def _ssl_context(ca_file: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise CliError(
            f"cannot load the amr CA certificate {ca_file}: {getattr(e, 'strerror', None) or e}. "
            "Run 'amr serve --detach' (or 'make run') to create it."
        ) from e


def _is_lro(response: httpx.Response) -> bool:
    if response.status_code not in (201, 202):
        return False
    return bool(response.headers.get("Azure-AsyncOperation") or response.headers.get("Location"))


def _json(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as e:
        raise CliError(
            f"the amr API returned a non-JSON response ({response.status_code}) for "
            f"{response.request.method} {_redact(str(response.request.url))}"
        ) from e


def _error_from_response(response: httpx.Response, default_code: str | None = None) -> ArmError:
    code = default_code or _default_code(response.status_code)
    message = response.reason_phrase or f"HTTP {response.status_code}"
    target = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or message)
            target = err.get("target")
        elif isinstance(err, str):  # OAuth-style {"error": "invalid_client", "error_description": ...}
            code = err
            message = str(body.get("error_description") or message)
        elif body.get("code") or body.get("message"):
            code = str(body.get("code") or code)
            message = str(body.get("message") or message)
    elif response.text.strip():
        message = f"{message}: {response.text.strip()[:300]}"
    return ArmError(code, message, status=response.status_code, target=target)


def _operation_error(body: dict[str, Any], status: str) -> ArmError:
    err: Any = body.get("error")
    if isinstance(err, dict) and isinstance(err.get("error"), dict):
        err = err["error"]  # the spec types it as a whole ErrorResponse
    if not isinstance(err, dict):
        err = {"code": body.get("code"), "message": body.get("message")}
    code = str(
        err.get("code") or ("OperationCanceled" if status.lower().startswith("cancel") else "OperationFailed")
    )
    message = str(err.get("message") or f"the operation ended with status {status}")
    return ArmError(code, message, status=400, target=err.get("target"))


def _default_code(status: int) -> str:
    return {
        400: "BadRequest",
        401: "AuthenticationFailed",
        403: "AuthorizationFailed",
        404: "ResourceNotFound",
        409: "Conflict",
        429: "TooManyRequests",
    }.get(status, "InternalServerError" if status >= 500 else f"HttpError{status}")


def _reason(e: httpx.TransportError) -> str:
    cause: BaseException | None = e
    # httpx wraps the OS error; the innermost message ("[Errno 111] Connection refused") is the useful one.
    while cause is not None and cause.__context__ is not None and not str(cause):
        cause = cause.__context__
    text = str(e) or (str(cause) if cause is not None else "") or type(e).__name__
    return text


def _redact(url: str) -> str:
    # Polling URLs can carry signatures; keep logs free of query strings.
    return url.split("?", 1)[0]
