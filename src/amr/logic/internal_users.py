"""The names of amr's own engine users, which no public port lets anyone authenticate as."""

from __future__ import annotations

# Every internal ACL user (amr-admin, amr-gateway, and those to come) has a name with this prefix.
INTERNAL_USER_PREFIX = "amr-"
_PREFIX = INTERNAL_USER_PREFIX.encode()


def is_internal_user(name: bytes) -> bool:
    """Whether ``name`` names (or could be taken for) one of amr's internal users: any name with the
    prefix, in any letter case, so no spelling of one reaches the engine from a public port."""
    return name[: len(_PREFIX)].lower() == _PREFIX
