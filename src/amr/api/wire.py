"""Reading ARM request JSON: type and enum checks with messages that name the field.

ARM treats property names case-insensitively and ignores properties it does not know; so do we.
"""

from __future__ import annotations

import enum
import json
from typing import Any, TypeVar

from amr.errors import ArmError, InvalidParameter

E = TypeVar("E", bound=enum.Enum)


def parse_json_body(raw: bytes, required: bool = True) -> dict[str, Any]:
    """The request body as a JSON object; 400 InvalidRequestContent when it is not one."""
    if not raw.strip():
        if required:
            raise ArmError(
                "InvalidRequestContent", "The request content is empty; a JSON object is required."
            )
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        # RecursionError: pathologically nested JSON must be a 400 like any other bad body, not a 500.
        raise ArmError(
            "InvalidRequestContent",
            f"The request content is not valid JSON: {e}. Send a JSON object.",
        ) from e
    if not isinstance(body, dict):
        raise ArmError("InvalidRequestContent", "The request content must be a JSON object.")
    return body


def field(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` matched case-insensitively; None when absent."""
    if name in obj:
        return obj[name]
    lower = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lower:
            return value
    return None


def has_field(obj: dict[str, Any], name: str) -> bool:
    lower = name.lower()
    return any(isinstance(k, str) and k.lower() == lower for k in obj)


def as_object(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidParameter(f"'{path}' must be a JSON object, not {_kind(value)}.", target=path)
    return value


def as_str(value: Any, path: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"'{path}' must be a string, not {_kind(value)}.", target=path)
    return value


def as_int(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"'{path}' must be an integer, not {_kind(value)}.", target=path)
    return value


def as_bool(value: Any, path: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise InvalidParameter(f"'{path}' must be true or false, not {_kind(value)}.", target=path)
    return value


def as_enum(value: Any, kind: type[E], path: str) -> E | None:
    """An enum value matched case-insensitively, as ARM does for modelAsString enums."""
    text = as_str(value, path)
    if text is None:
        return None
    for member in kind:
        if str(member.value).lower() == text.lower():
            return member
    allowed = ", ".join(str(m.value) for m in kind)
    raise InvalidParameter(
        f"The value '{text}' of '{path}' is not valid. Allowed values: {allowed}.", target=path
    )


def as_tags(value: Any, path: str = "tags") -> dict[str, str] | None:
    if value is None:
        return None
    obj = as_object(value, path)
    for key, tag in obj.items():
        if not isinstance(tag, str):
            raise InvalidParameter(f"'{path}.{key}' must be a string, not {_kind(tag)}.", target=path)
        if len(key) > 512 or len(tag) > 256:
            raise InvalidParameter(
                f"Tag '{key[:40]}' is too long: names may have 512 characters and values 256.", target=path
            )
    return dict(obj)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"
