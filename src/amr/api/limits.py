"""Limits on what a client may make the API read, and for how long.

Two layers, because uvicorn reads headers itself and hands the body to the app:
- ``RequestLimits`` (ASGI middleware) reads each request body before the app sees it, refusing it
  with 413 as soon as Content-Length or the bytes received pass ``max_body_bytes`` (it stops
  reading: a 1 GiB upload costs at most the cap in memory), and with 408 when the whole body has not
  arrived within ``body_timeout`` seconds. Both answers close the connection.
- ``header_timeout_protocol`` gives uvicorn an HTTP/1.1 protocol that closes a connection whose
  request headers have not all arrived within ``header_timeout`` seconds of the connection being
  made (after the TLS handshake) or of the request's first byte (keep-alive requests), so clients
  trickling headers cannot hold connections open.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from amr.errors import ArmError

log = logging.getLogger(__name__)

# Request line and headers, at most (h11's own bound on a request it has not finished parsing).
MAX_HEADER_BYTES = 16 * 1024


async def _refuse(scope: Scope, send: Send, error: ArmError) -> None:
    body = json.dumps(error.to_body()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    for name, value in scope.get("headers", []):
        if name == b"x-ms-client-request-id":
            headers.append((name, value))
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


class RequestLimits:
    """ASGI middleware: a request body is read whole, within ``max_body_bytes`` and
    ``body_timeout`` seconds, before the app runs; otherwise the ARM error (413 or 408)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, body_timeout: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    def _too_large(self) -> ArmError:
        return ArmError(
            "RequestEntityTooLarge",
            f"The request body is larger than {self.max_body_bytes} bytes, the most amr accepts "
            "(setting api.max_body_bytes).",
            413,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = _content_length(scope)
        if length is not None and (length < 0 or length > self.max_body_bytes):
            await _refuse(scope, send, self._too_large())
            return
        body = bytearray()
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    body += message.get("body", b"")
                    if len(body) > self.max_body_bytes:
                        await _refuse(scope, send, self._too_large())
                        return
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            client = scope.get("client") or ("?", 0)
            log.warning("request body not received in time", extra={"client": client[0]})
            await _refuse(
                scope,
                send,
                ArmError(
                    "RequestTimeout",
                    f"The request body did not arrive within {self.body_timeout:g} seconds "
                    "(setting api.body_timeout).",
                    408,
                ),
            )
            return
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the app the body already read, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections whose request headers are late."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._headers_too_large(data):
            self.send_400_response("request headers too large")
            return
        super().data_received(data)
        self._follow_request()

    def _headers_too_large(self, data: bytes) -> bool:
        # h11 bounds only a request it has not finished parsing, so headers arriving whole in one
        # read could be of any size: bound them here, where the request's head is still unparsed.
        pending = self.conn.trailing_data[0]
        if len(pending) + len(data) <= MAX_HEADER_BYTES:
            return False
        head = (bytes(pending) + data)[: MAX_HEADER_BYTES + 4]
        return b"\r\n\r\n" not in head

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers bytes that are not HTTP/1.1 (or headers over h11's 16 KiB) in plain text;
        # amr's clients get the ARM envelope for every refusal.
        error = ArmError(
            "InvalidHttpRequest",
            "The request is not valid HTTP/1.1, or its headers are larger than 16 KiB.",
            400,
        )
        body = json.dumps(error.to_body()).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            for event in (h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
                          h11.Data(data=body), h11.EndOfMessage()):  # fmt: skip
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            pass  # a response was already under way: just close
        self.transport.close()

    def _follow_request(self) -> None:
        # Headers are still due while h11 waits for a request and holds part of one; once the
        # request line and headers are parsed (SEND_BODY or later) the body timeout takes over, and
        # an idle keep-alive connection is uvicorn's keep-alive timeout's business.
        waiting = self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
        if waiting:
            self._arm_header_timer()
        else:
            self._cancel_header_timer()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.warning("request headers not received in time; closing the connection",
                        extra={"client": self.client[0] if self.client else ""})  # fmt: skip
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The uvicorn ``http`` protocol class closing connections whose headers take over ``seconds``."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": seconds})
