"""One exception tree for amr.

Every error a user can see is an ``AmrError``. ``ArmError`` carries an ARM error code, a message
that says what to fix, an HTTP status and an optional target; only the API layer renders it as the
ARM error envelope. Adapters catch third-party exceptions and re-raise ours ``from e``.
"""

from __future__ import annotations

from typing import Any


class AmrError(Exception):
    """Base of every error amr raises on purpose."""


class ConfigError(AmrError):
    """Settings or AMR_HOME are unusable (bad amr.toml, unwritable home, missing binary)."""


class ArmError(AmrError):
    """An error with an ARM code, rendered by the API as ``{"error": {...}}``."""

    def __init__(self, code: str, message: str, status: int = 400, target: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.target = target

    def to_body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "target": self.target,
                "details": [],
                "additionalInfo": [],
            }
        }


class InvalidParameter(ArmError):
    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__("InvalidParameter", message, 400, target)


class ResourceNotFound(ArmError):
    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__("ResourceNotFound", message, 404, target)


class Conflict(ArmError):
    def __init__(self, message: str, target: str | None = None) -> None:
        super().__init__("Conflict", message, 409, target)


class Unauthorized(ArmError):
    def __init__(self, message: str, code: str = "AuthenticationFailed") -> None:
        super().__init__(code, message, 401)


class NodeError(AmrError):
    """A node could not be started, reached or configured; the message carries the engine's reason."""


class GatewayError(AmrError):
    """The gateway could not load its routes or certificate."""


class MetricStoreError(AmrError):
    """The metric store (``AMR_HOME/monitor/metrics.db``) could not be opened or written."""


class StoreError(AmrError):
    """The store could not read or write."""


class ConcurrencyError(StoreError):
    """A record changed between read and write (optimistic concurrency)."""


class EngineUnreachable(NodeError):
    """A node's socket could not be reached, or the connection broke or stopped making sense.
    ``gone`` is True when nothing listens there (the node's process is not running)."""

    def __init__(self, message: str, gone: bool = False) -> None:
        super().__init__(message)
        self.gone = gone


class EngineError(NodeError):
    """The engine answered with an error reply; ``code`` is its first word (``WRONGPASS``, ``MOVED``).
    The classes below are picked by code in ``amr.logic.resp.engine_codec.ENGINE_ERRORS``, as redis-py
    picks its exception classes."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class EngineAuthError(EngineError):
    """NOAUTH, WRONGPASS: the connection is not (or could not be) authenticated."""


class EnginePermissionError(EngineError):
    """NOPERM: the user may not run that command or touch that key or channel."""


class EngineLoadingError(EngineError):
    """LOADING: the node is alive but still loading its dataset."""


class EngineBusyError(EngineError):
    """BUSY: a script or function is running."""


class EngineRedirect(EngineError):
    """MOVED, ASK: the slot is served by another node."""


class EngineTryAgain(EngineError):
    """TRYAGAIN: a multi-key command met a slot that is migrating."""


class EngineClusterDown(EngineError):
    """CLUSTERDOWN: the cluster cannot serve the slot now."""


class EngineReadOnly(EngineError):
    """READONLY: a write reached a replica."""


class EngineMasterDown(EngineError):
    """MASTERDOWN: a replica lost its primary and does not serve stale data."""
