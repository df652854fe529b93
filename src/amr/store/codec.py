"""Turning model dataclasses into JSON-able records and back (the store's own format)."""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


def to_record(value: Any) -> Any:
    """A JSON-able form of a model value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_record(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [to_record(v) for v in value]
    if isinstance(value, dict):
        return {k: to_record(v) for k, v in value.items()}
    return value


def from_record(cls: type[T], data: dict[str, Any]) -> T:
    """The model value of ``cls`` that ``to_record`` produced ``data`` from."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _decode(hints[f.name], data[f.name])
    return cls(**kwargs)


def _decode(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            return _decode(arg, value)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_decode(item, v) for v in value)
    if origin is dict:
        return dict(value)
    if origin is frozenset:
        return frozenset(value)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint(value)
    if dataclasses.is_dataclass(hint):
        return from_record(hint, value)  # type: ignore[arg-type]
    return value
