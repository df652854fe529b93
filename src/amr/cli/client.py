"""The CLI's HTTPS client of the amr API: bearer tokens, ARM calls and paging.

Everything the CLI knows about the server goes through ``ArmClient``; it never reads the store.
httpx errors are translated here into ``ApiUnreachable`` / ``ArmError`` (``amr.cli.responses``) so
that the command layer only sees amr's own exceptions; waiting for long-running operations is
``amr.cli.lro``'s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from amr.cli.credentials import Credentials, ssl_context
from amr.cli.errors import ApiUnreachable, CliError
from amr.cli.lro import TERMINAL_OK, LroPoller, is_lro, provisioning_state
from amr.cli.responses import error_from_response, read_json, redact, transport_reason
from amr.errors import ArmError

log = logging.getLogger(__name__)

CACHE_API_VERSION = "2025-07-01"
RESOURCES_API_VERSION = "2024-03-01"
ARM_SCOPE = "https://management.azure.com/.default"
DEFAULT_POLL_INTERVAL = 0.25
DEFAULT_LRO_TIMEOUT = 600.0


@dataclass
class _Token:
    value: str
    expires_on: float  # epoch seconds


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
        self._wall_clock = wall_clock
        self._lro = LroPoller(
            self._get_response,
            self.base_url,
            poll_interval=poll_interval,
            lro_timeout=lro_timeout,
            sleep=sleep,
            clock=clock,
            progress_stream=progress_stream,
        )
        self._token: _Token | None = None
        verify: Any = True
        if credentials.ca_file and transport is None:
            verify = ssl_context(credentials.ca_file)
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
            raise error_from_response(response, default_code="AuthenticationFailed")
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
            raise ApiUnreachable(self.base_url, transport_reason(e)) from e
        except httpx.HTTPError as e:  # e.g. invalid URL
            raise CliError(f"request to the amr API failed: {e}") from e
        log.debug("%s %s -> %s", method, redact(str(response.request.url)), response.status_code)
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
            raise error_from_response(response)
        return response

    # -- high-level verbs -------------------------------------------------------------------------

    def get(self, url: str, *, api_version: str = CACHE_API_VERSION) -> Any:
        return read_json(self.request("GET", url, api_version=api_version))

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
                raise CliError(f"the amr API returned a nextLink loop at {redact(next_url)}")
            seen.add(next_url)
            body = read_json(self.request("GET", next_url, api_version=api_version)) or {}
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
        if not is_lro(response):
            return read_json(response)
        if not wait:
            return None
        return self.wait_for(response, api_version=api_version)

    def _mutate(self, method: str, url: str, body: Any, *, api_version: str, wait: bool) -> Any:
        response = self.request(method, url, api_version=api_version, json_body=body)
        if not wait:
            return None if is_lro(response) else read_json(response)
        if not is_lro(response):
            result = read_json(response)
            if response.status_code == 201 and provisioning_state(result) not in TERMINAL_OK | {""}:
                # No polling header: like azure-core, watch the resource's own provisioningState.
                return self._lro.poll_provisioning_state(url, api_version)
            return result
        self.wait_for(response, api_version=api_version)
        return self.get(url, api_version=api_version)

    # -- long-running operations ------------------------------------------------------------------

    def wait_for(self, response: httpx.Response, *, api_version: str = CACHE_API_VERSION) -> Any:
        """Poll an LRO started by ``response`` until it finishes; return the final body if any.

        Azure-AsyncOperation wins over Location (as in azure-core's ARMPolling). Failed or Canceled
        operations raise ArmError with the operation's error.
        """
        return self._lro.wait_for(response, api_version)

    def _get_response(self, url: str, api_version: str) -> httpx.Response:
        return self.request("GET", url, api_version=api_version)
