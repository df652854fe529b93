"""Bearer tokens for the management API.

amr is its own identity provider: the local admin principal (credentials.json) trades its client
secret for a signed, expiring token at ``/{tenant}/oauth2/v2.0/token`` (the Entra shape, so
azure-identity's ClientSecretCredential works), and every ARM call must carry it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from amr.errors import ArmError, Unauthorized
from amr.logic.security.token_claims import MANAGEMENT_AUDIENCES, ExpectedClaims, validate_token_claims

TOKEN_LIFETIME = 3600
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    client_id: str
    client_secret: str


class TokenService:
    """Issues and checks HS256 JWTs signed with a key kept in AMR_HOME."""

    def __init__(self, signing_key: bytes, principal: Principal, clock: Callable[[], float]) -> None:
        self._key = signing_key
        self._principal = principal
        self._clock = clock
        self._expected = ExpectedClaims(self.issuer, principal.tenant_id)

    @property
    def issuer(self) -> str:
        return f"https://amr.local/{self._principal.tenant_id}/"

    def issue(self, client_id: str, client_secret: str, scope: str) -> tuple[str, int]:
        """A token and its lifetime in seconds, for valid client credentials."""
        ok_id = hmac.compare_digest(client_id.encode(), self._principal.client_id.encode())
        ok_secret = hmac.compare_digest(client_secret.encode(), self._principal.client_secret.encode())
        if not (ok_id and ok_secret):
            raise ArmError("invalid_client", "The client id or client secret is not valid.", 401)
        audience = scope.removesuffix("/.default") or MANAGEMENT_AUDIENCES[0]
        if audience not in MANAGEMENT_AUDIENCES:
            # Entra's answer for a resource it does not know: amr only issues management API tokens.
            raise ArmError(
                "invalid_scope",
                f"The scope '{scope}' is not valid: amr issues tokens for {MANAGEMENT_AUDIENCES[0]}/.default only.",
                400,
            )
        now = int(self._clock())
        claims = {
            "aud": audience,
            "iss": self.issuer,
            "sub": client_id,
            "appid": client_id,
            "tid": self._principal.tenant_id,
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME,
            "jti": secrets.token_hex(8),
        }
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
        return f"{header}.{body}.{signature}", TOKEN_LIFETIME

    def verify(self, authorization: str | None) -> dict[str, object]:
        """The claims of a valid ``Authorization: Bearer`` header; raises 401 otherwise."""
        if not authorization:
            raise Unauthorized(
                "Authentication failed. The 'Authorization' header is missing.", code="AuthenticationFailed"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "Authentication failed. The 'Authorization' header must be 'Bearer <token>'.",
                code="AuthenticationFailed",
            )
        try:
            header, body, signature = token.strip().split(".")
            expected = _b64(hmac.new(self._key, f"{header}.{body}".encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(signature, expected):
                raise ValueError("bad signature")
            # Only the algorithm amr signs with: a token must not choose how it is checked.
            if json.loads(_unb64(header)).get("alg") != "HS256":
                raise ValueError("unexpected algorithm")
            claims = json.loads(_unb64(body))
        except (ValueError, TypeError, AttributeError) as e:
            raise Unauthorized(
                "Authentication failed. The access token is not valid.", code="InvalidAuthenticationToken"
            ) from e
        return validate_token_claims(claims, self._expected, self._clock())
