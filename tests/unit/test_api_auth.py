"""TokenService: issuing and verifying bearer tokens, with an injected clock."""

from __future__ import annotations

import base64
import json

import pytest

from amr.api.auth import TOKEN_LIFETIME, Principal, TokenService
from amr.errors import ArmError

PRINCIPAL = Principal("tenant-1", "client-1", "secret-1")
SCOPE = "https://management.azure.com/.default"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def service(clock: Clock, key: bytes = b"signing-key") -> TokenService:
    return TokenService(key, PRINCIPAL, clock)


def claims_of(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_issue_and_verify() -> None:
    clock = Clock()
    tokens = service(clock)
    token, lifetime = tokens.issue("client-1", "secret-1", SCOPE)
    assert lifetime == TOKEN_LIFETIME
    claims = tokens.verify(f"Bearer {token}")
    assert claims["aud"] == "https://management.azure.com"
    assert claims["tid"] == "tenant-1" and claims["appid"] == "client-1"
    assert claims["exp"] == int(clock.now) + TOKEN_LIFETIME
    assert tokens.verify(f"bearer {token}") == claims  # scheme is case-insensitive
    assert "secret-1" not in token


@pytest.mark.parametrize(("client_id", "secret"), [("client-1", "wrong"), ("other", "secret-1"), ("", "")])
def test_wrong_client_credentials(client_id: str, secret: str) -> None:
    with pytest.raises(ArmError) as e:
        service(Clock()).issue(client_id, secret, SCOPE)
    assert (e.value.code, e.value.status) == ("invalid_client", 401)


def test_token_expires() -> None:
    clock = Clock()
    tokens = service(clock)
    token, _ = tokens.issue("client-1", "secret-1", SCOPE)
    clock.now += TOKEN_LIFETIME  # exactly at expiry it is still accepted
    tokens.verify(f"Bearer {token}")
    clock.now += 1
    with pytest.raises(ArmError) as e:
        tokens.verify(f"Bearer {token}")
    assert (e.value.code, e.value.status) == ("ExpiredAuthenticationToken", 401)
    assert "get-access-token" in e.value.message


def test_token_signed_with_another_secret_is_refused() -> None:
    clock = Clock()
    token, _ = service(clock, b"other-key").issue("client-1", "secret-1", SCOPE)
    with pytest.raises(ArmError) as e:
        service(clock).verify(f"Bearer {token}")
    assert (e.value.code, e.value.status) == ("InvalidAuthenticationToken", 401)


def test_tampered_claims_are_refused() -> None:
    clock = Clock()
    tokens = service(clock)
    token, _ = tokens.issue("client-1", "secret-1", SCOPE)
    header, body, signature = token.split(".")
    claims = claims_of(token)
    claims["exp"] = int(clock.now) + 10 * TOKEN_LIFETIME
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(ArmError, match="not valid"):
        tokens.verify(f"Bearer {header}.{forged}.{signature}")


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (None, "AuthenticationFailed"),
        ("", "AuthenticationFailed"),
        ("Bearer", "AuthenticationFailed"),
        ("Basic abc", "AuthenticationFailed"),
        ("Bearer abc", "InvalidAuthenticationToken"),
        ("Bearer a.b.c", "InvalidAuthenticationToken"),
        ("Bearer a.b.c.d", "InvalidAuthenticationToken"),
        ("Bearer ....", "InvalidAuthenticationToken"),
        ("Bearer a.b.\u00e9", "InvalidAuthenticationToken"),
    ],
)
def test_malformed_authorization(authorization: str | None, code: str) -> None:
    with pytest.raises(ArmError) as e:
        service(Clock()).verify(authorization)
    assert (e.value.code, e.value.status) == (code, 401)
    assert e.value.to_body()["error"]["code"] == code
