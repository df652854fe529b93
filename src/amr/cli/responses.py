"""How the API's answers become values or amr's exceptions: JSON bodies, ARM and OAuth error bodies,
failed operations and transport failures, with query strings kept out of messages and logs."""

from __future__ import annotations

from typing import Any

import httpx

from amr.cli.errors import CliError
from amr.errors import ArmError


def read_json(response: httpx.Response) -> Any:
    """The response's JSON body, None for an empty one; CliError if it is not JSON."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except ValueError as e:
        raise CliError(
            f"the amr API returned a non-JSON response ({response.status_code}) for "
            f"{response.request.method} {redact(str(response.request.url))}"
        ) from e


def error_from_response(response: httpx.Response, default_code: str | None = None) -> ArmError:
    """The ArmError a 4xx/5xx response stands for, read from an ARM, OAuth or bare error body."""
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


def operation_error(body: dict[str, Any], status: str) -> ArmError:
    """The ArmError of a long-running operation that ended Failed or Canceled with this status body."""
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


def transport_reason(e: httpx.TransportError) -> str:
    """Why the API could not be reached, in the operating system's words where httpx has them."""
    cause: BaseException | None = e
    # httpx wraps the OS error; the innermost message ("[Errno 111] Connection refused") is the useful one.
    while cause is not None and cause.__context__ is not None and not str(cause):
        cause = cause.__context__
    text = str(e) or (str(cause) if cause is not None else "") or type(e).__name__
    return text


def redact(url: str) -> str:
    """The URL without its query string."""
    # Polling URLs can carry signatures; keep logs free of query strings.
    return url.split("?", 1)[0]
