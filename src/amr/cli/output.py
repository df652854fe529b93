"""Rendering command results like az: json, jsonc, table, tsv or none, after an optional JMESPath query."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import jmespath
import jmespath.exceptions

from amr.cli.errors import CliError

FORMATS = ("json", "jsonc", "table", "tsv", "none")

# az's table output leaves these out: they are long and rarely what a table reader wants.
_TABLE_SKIP_KEYS = {"id", "type", "etag"}
# Columns az's table transformers put first (`Name  ResourceGroup  Location`); the rest follow sorted.
_TABLE_FIRST_KEYS = ("name", "resourceGroup", "location")


def _table_keys(item: dict[Any, Any]) -> list[Any]:
    first = [k for k in _TABLE_FIRST_KEYS if k in item]
    return first + sorted((k for k in item if k not in first), key=str)


class RawText(str):
    """Text a command prints verbatim, whatever -o says (e.g. show-connection --format env)."""


class QueryError(CliError):
    """The --query expression is not valid JMESPath."""


def apply_query(data: Any, query: str | None) -> Any:
    """Apply a JMESPath expression, keeping the key order the expression asks for."""
    if not query:
        return data
    try:
        return jmespath.search(query, data, options=jmespath.Options(dict_cls=dict))
    except jmespath.exceptions.JMESPathError as e:
        raise QueryError(f"argument --query: invalid jmespath query supplied: '{query}': {e}") from e


def render(data: Any, fmt: str = "json", query: str | None = None, *, color: bool = False) -> str:
    """Return the text to print for ``data`` (empty string: print nothing)."""
    if isinstance(data, RawText):
        return str(data)
    query_active = bool(query)
    data = apply_query(data, query)
    if fmt == "none":
        return ""
    if fmt == "json":
        return render_json(data)
    if fmt == "jsonc":
        return render_jsonc(data) if color else render_json(data)
    if fmt == "table":
        return render_table(data, sort_keys=not query_active)
    if fmt == "tsv":
        return render_tsv(data, sort_keys=not query_active)
    raise CliError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")


def render_json(data: Any) -> str:
    if data is None:
        return ""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


_C_KEY, _C_STR, _C_NUM, _C_LIT, _C_END = "\x1b[94m", "\x1b[32m", "\x1b[36m", "\x1b[95m", "\x1b[0m"


def render_jsonc(data: Any) -> str:
    """Colourised JSON (az's jsonc) for terminals."""
    if data is None:
        return ""
    return _jsonc(data, 0) + "\n"


def _jsonc(value: Any, indent: int) -> str:
    pad, inner = "  " * indent, "  " * (indent + 1)
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = [
            f"{inner}{_C_KEY}{json.dumps(str(k), ensure_ascii=False)}{_C_END}: {_jsonc(value[k], indent + 1)}"
            for k in sorted(value, key=str)
        ]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        if not value:
            return "[]"
        return "[\n" + ",\n".join(f"{inner}{_jsonc(v, indent + 1)}" for v in value) + f"\n{pad}]"
    if isinstance(value, str):
        return f"{_C_STR}{json.dumps(value, ensure_ascii=False)}{_C_END}"
    if isinstance(value, bool) or value is None:
        return f"{_C_LIT}{json.dumps(value)}{_C_END}"
    if isinstance(value, (int, float)):
        return f"{_C_NUM}{json.dumps(value)}{_C_END}"
    return f"{_C_STR}{json.dumps(str(value), ensure_ascii=False)}{_C_END}"


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list, tuple, set))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return str(value)


def _table_row(item: Any, sort_keys: bool) -> dict[str, Any]:
    if isinstance(item, dict):
        keys: Iterable[Any] = _table_keys(item) if sort_keys else item.keys()
        row: dict[str, Any] = {}
        for k in keys:
            k_str = str(k)
            if k_str in _TABLE_SKIP_KEYS:
                continue
            v = item[k]
            if v is not None and _is_scalar(v):
                row[k_str[:1].upper() + k_str[1:]] = v
        return row
    if isinstance(item, list):
        return {f"Column{i + 1}": v for i, v in enumerate(item)}
    return {"Result": item}


def render_table(data: Any, *, sort_keys: bool = True) -> str:
    """A plain text table like az's (tabulate 'simple'): header, dashes, rows; scalars only."""
    if data is None:
        return ""
    items = data if isinstance(data, list) else [data]
    rows = [_table_row(item, sort_keys) for item in items]
    headers: list[str] = []
    for row in rows:
        for h in row:
            if h not in headers:
                headers.append(h)
    if not headers:
        return ""
    cells = [[_cell(row.get(h)) for h in headers] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _tsv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("\t", " ").replace("\n", " ")


def _tsv_row(item: Any, sort_keys: bool) -> str:
    if isinstance(item, dict):
        keys: Iterable[Any] = sorted(item, key=str) if sort_keys else item.keys()
        return "\t".join(_tsv_value(item[k]) for k in keys if _is_scalar(item[k]))
    if isinstance(item, (list, tuple)):
        return "\t".join(_tsv_value(v) for v in item if _is_scalar(v))
    return _tsv_value(item)


def render_tsv(data: Any, *, sort_keys: bool = True) -> str:
    """Tab-separated scalar values, one line per item, no header (for shell scripts)."""
    if data is None:
        return ""
    items = data if isinstance(data, list) else [data]
    return "".join(_tsv_row(item, sort_keys) + "\n" for item in items)
