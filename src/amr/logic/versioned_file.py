"""The envelope of the JSON files the control plane writes for other processes to follow
(gateway/routes.json, ha/watch.json): a format version, and a body that either parses or says what
is wrong with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from amr.errors import AmrError

T = TypeVar("T")


def parse_versioned_json(
    text: str, version: int, name: str, error: Callable[[str], AmrError], build: Callable[[Any], T]
) -> T:
    """Parse ``text`` as the JSON file called ``name`` in format ``version`` and ``build`` its value
    from the decoded document. Any problem (not JSON, another version, a missing or mistyped field)
    raises ``error`` with a message saying what is wrong; errors ``build`` raises itself pass as they
    are."""
    try:
        data: Any = json.loads(text)
        if data.get("version") != version:
            raise error(f"{name} version {data.get('version')!r} is not {version}")
        return build(data)
    except AmrError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise error(f"{name} is malformed: {e}") from e
