"""Which management API tokens are valid: the claims of a correctly signed token, checked against
this amr's audience, issuer and tenant at a given time.

The signature is checked before (amr.api.auth); this decides whether what the token says is
acceptable. Every refusal is ``Unauthorized`` (401 with an ARM code), never a crash on an odd claim
type: a signed ``"exp": "x"`` is as invalid as a wrong signature.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amr.errors import Unauthorized

# A token minted on another host may be verified a moment "before" its nbf; a minute covers clock
# drift between hosts without letting a token be used meaningfully early.
NBF_CLOCK_SKEW = 60

# The audiences ARM accepts: az asks for management.core.windows.net, the SDKs for management.azure.com.
MANAGEMENT_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)


@dataclass(frozen=True)
class ExpectedClaims:
    """What a token must say to be accepted by this amr."""

    issuer: str
    tenant_id: str
    audiences: tuple[str, ...] = MANAGEMENT_AUDIENCES


def _invalid(why: str) -> Unauthorized:
    return Unauthorized(
        f"Authentication failed. The access token is not valid: {why}. "
        "Get a new token (amr account get-access-token) and retry.",
        code="InvalidAuthenticationToken",
    )


def _time_claim(claims: dict[str, object], name: str) -> int:
    value = claims.get(name)
    # bool is an int in Python; a JSON true is not a time.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _invalid(f"the '{name}' claim must be a number of seconds (got {type(value).__name__})")
    return int(value)


def _text_claim(claims: dict[str, object], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str):
        raise _invalid(f"the '{name}' claim must be a string (got {type(value).__name__})")
    return value


def validate_token_claims(claims: object, expected: ExpectedClaims, now: float) -> dict[str, object]:
    """The claims if a signed token may call the management API at ``now``; raises
    ``Unauthorized`` naming the first claim that is missing, of the wrong type or wrong."""
    if not isinstance(claims, dict):
        raise _invalid("its payload is not a JSON object")
    aud = _text_claim(claims, "aud")
    if aud not in expected.audiences:
        raise _invalid(f"its audience '{aud}' is not the management API ({expected.audiences[0]})")
    iss = _text_claim(claims, "iss")
    if iss != expected.issuer:
        raise _invalid(f"its issuer '{iss}' is not this amr ({expected.issuer})")
    tid = _text_claim(claims, "tid")
    if tid.lower() != expected.tenant_id.lower():
        raise _invalid(f"its tenant '{tid}' is not this amr's tenant")
    exp = _time_claim(claims, "exp")
    nbf = _time_claim(claims, "nbf")
    if nbf > now + NBF_CLOCK_SKEW:
        raise _invalid("it is not valid yet (nbf is in the future)")
    if exp < now:
        raise Unauthorized(
            "The access token has expired. Get a new token (amr account get-access-token) and retry.",
            code="ExpiredAuthenticationToken",
        )
    return dict(claims)
