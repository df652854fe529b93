"""TokenService: issuing and verifying bearer tokens, with an injected clock."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from amr.api.auth import TOKEN_LIFETIME, Principal, TokenService
from amr.errors import ArmError
from amr.logic.security.token_claims import NBF_CLOCK_SKEW

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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(claims: Any, key: bytes = b"signing-key", header: Any = None) -> str:
    """A token carrying ``claims``, correctly signed with the service's key: only the claims can
    make it invalid."""
    head = _b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def good_claims(clock: Clock) -> dict[str, Any]:
    token, _ = service(clock).issue("client-1", "secret-1", SCOPE)
    return claims_of(token)


def test_crafted_token_with_the_issued_claims_is_accepted() -> None:
    clock = Clock()
    assert service(clock).verify(f"Bearer {signed(good_claims(clock))}")["tid"] == "tenant-1"


@pytest.mark.parametrize(
    ("change", "mention"),
    [
        ({"aud": "https://vault.azure.net"}, "audience"),
        ({"aud": 5}, "'aud' claim must be a string"),
        ({"aud": ["https://management.azure.com"]}, "'aud' claim must be a string"),
        ({"iss": "https://login.microsoftonline.com/tenant-1/v2.0"}, "issuer"),
        ({"iss": None}, "'iss' claim must be a string"),
        ({"tid": "tenant-2"}, "tenant"),
        ({"tid": 1}, "'tid' claim must be a string"),
        ({"exp": "x"}, "'exp' claim must be a number"),
        ({"exp": True}, "'exp' claim must be a number"),
        ({"exp": None}, "'exp' claim must be a number"),
        ({"exp": float("inf")}, "'exp' claim must be a number"),
        ({"nbf": "0"}, "'nbf' claim must be a number"),
        ({"nbf": 1_700_000_000 + NBF_CLOCK_SKEW + 1}, "not valid yet"),
    ],
)
def test_signed_token_with_a_bad_claim_is_401(change: dict[str, Any], mention: str) -> None:
    clock = Clock()
    claims = {**good_claims(clock), **change}
    with pytest.raises(ArmError) as e:
        service(clock).verify(f"Bearer {signed(claims)}")
    assert (e.value.code, e.value.status) == ("InvalidAuthenticationToken", 401)
    assert mention in e.value.message


@pytest.mark.parametrize("missing", ["aud", "iss", "tid", "exp", "nbf"])
def test_signed_token_missing_a_claim_is_401(missing: str) -> None:
    clock = Clock()
    claims = good_claims(clock)
    del claims[missing]
    with pytest.raises(ArmError) as e:
        service(clock).verify(f"Bearer {signed(claims)}")
    assert (e.value.code, e.value.status, missing in e.value.message) == (
        "InvalidAuthenticationToken",
        401,
        True,
    )


def test_nbf_within_the_clock_skew_is_accepted() -> None:
    clock = Clock()
    claims = {**good_claims(clock), "nbf": int(clock.now) + NBF_CLOCK_SKEW}
    assert service(clock).verify(f"Bearer {signed(claims)}")["nbf"] == int(clock.now) + NBF_CLOCK_SKEW


@pytest.mark.parametrize("payload", [[1, 2], "text", 5, None])
def test_signed_token_whose_payload_is_not_an_object_is_401(payload: Any) -> None:
    with pytest.raises(ArmError) as e:
        service(Clock()).verify(f"Bearer {signed(payload)}")
    assert (e.value.code, e.value.status) == ("InvalidAuthenticationToken", 401)


@pytest.mark.parametrize("header", [{"alg": "none"}, {"alg": "HS512"}, ["HS256"]])
def test_signed_token_naming_another_algorithm_is_401(header: Any) -> None:
    clock = Clock()
    with pytest.raises(ArmError) as e:
        service(clock).verify(f"Bearer {signed(good_claims(clock), header=header)}")
    assert (e.value.code, e.value.status) == ("InvalidAuthenticationToken", 401)


@pytest.mark.parametrize(
    "scope", ["https://management.core.windows.net//.default", "https://management.azure.com//.default", ""]
)
def test_management_scopes_give_tokens_the_api_accepts(scope: str) -> None:
    tokens = service(Clock())
    token, _ = tokens.issue("client-1", "secret-1", scope)
    assert tokens.verify(f"Bearer {token}")["aud"] in ("https://management.azure.com",
                                                        "https://management.azure.com/",
                                                        "https://management.core.windows.net/")  # fmt: skip


def test_token_for_another_resource_is_not_issued() -> None:
    with pytest.raises(ArmError) as e:
        service(Clock()).issue("client-1", "secret-1", "https://vault.azure.net/.default")
    assert (e.value.code, e.value.status) == ("invalid_scope", 400)
