"""Argument helpers shared by the command modules (az-style key=value parsing, resource-group ids)."""

from __future__ import annotations

import argparse
import re
from typing import Any

import jmespath
import jmespath.exceptions

_RG_IN_ID = re.compile(r"/resourcegroups/([^/]+)", re.IGNORECASE)


def parse_tags(values: list[str] | None) -> dict[str, str] | None:
    """az's --tags: ``k=v`` words; ``k`` alone means an empty value; a single "" clears all tags."""
    if values is None:
        return None
    tags: dict[str, str] = {}
    for word in values:
        if word == "":
            continue
        key, _, value = word.partition("=")
        if not key:
            raise argparse.ArgumentTypeError(f"invalid tag {word!r}: use key=value")
        tags[key] = value
    return tags


def parse_key_values(words: list[str], flag: str, allowed: dict[str, str]) -> dict[str, str]:
    """Parse ``a-b=c`` words into ``{"aB": "c"}`` using the allowed mapping of flag keys to ARM keys."""
    out: dict[str, str] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or key.lower() not in allowed:
            known = ", ".join(f"{k}=..." for k in allowed)
            raise argparse.ArgumentTypeError(f"{flag}: invalid value {word!r}; expected {known}")
        out[allowed[key.lower()]] = value
    return out


def parse_bool(value: str, flag: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "yes", "1", "enabled"):
        return True
    if v in ("false", "no", "0", "disabled"):
        return False
    raise argparse.ArgumentTypeError(f"{flag}: expected true or false, got {value!r}")


_PERSISTENCE_KEYS = {
    "aof-enabled": "aofEnabled",
    "aof-frequency": "aofFrequency",
    "rdb-enabled": "rdbEnabled",
    "rdb-frequency": "rdbFrequency",
    "aofenabled": "aofEnabled",
    "aoffrequency": "aofFrequency",
    "rdbenabled": "rdbEnabled",
    "rdbfrequency": "rdbFrequency",
}


def parse_persistence(words: list[str] | None) -> dict[str, Any] | None:
    """``aof-enabled=true aof-frequency=1s`` -> ``{"aofEnabled": true, "aofFrequency": "1s"}``."""
    if words is None:
        return None
    raw = parse_key_values(words, "--persistence", _PERSISTENCE_KEYS)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out[key] = parse_bool(value, f"--persistence {key}") if key.endswith("Enabled") else value
    return out


def parse_modules(groups: list[list[str]] | None) -> list[dict[str, str]] | None:
    """Each ``--modules name=RedisBloom args="ERROR_RATE 0.02"`` becomes ``{"name", "args"}``."""
    if groups is None:
        return None
    modules = []
    for words in groups:
        module = parse_key_values(words, "--modules", {"name": "name", "args": "args"})
        if not module.get("name"):
            raise argparse.ArgumentTypeError("--modules: name=<module> is required")
        modules.append(module)
    return modules


def resource_group_of(resource_id: str | None) -> str | None:
    if not resource_id:
        return None
    m = _RG_IN_ID.search(resource_id)
    return m.group(1) if m else None


def with_resource_group(resource: Any) -> Any:
    """Add az's derived ``resourceGroup`` field to a resource object."""
    if isinstance(resource, dict) and "resourceGroup" not in resource:
        rg = resource_group_of(resource.get("id"))
        if rg is not None:
            resource = {**resource, "resourceGroup": rg}
    return resource


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def jmespath_query(text: str) -> str:
    """argparse type: reject an invalid --query before any request is made (az's usage error)."""
    try:
        jmespath.compile(text)
    except jmespath.exceptions.JMESPathError as e:
        raise argparse.ArgumentTypeError(f"invalid jmespath query supplied: '{text}': {e}") from e
    return text


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """Global options on every command; SUPPRESS lets them appear at any level without overriding."""
    g = parser.add_argument_group("Global Arguments")
    g.add_argument(
        "-o",
        "--output",
        choices=("json", "jsonc", "table", "tsv", "none"),
        default=argparse.SUPPRESS,
        help="Output format (default: json).",
    )
    g.add_argument("--query", type=jmespath_query, default=argparse.SUPPRESS, help="JMESPath query string.")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="Show all debug logs.")
    g.add_argument(
        "--verbose", action="store_true", default=argparse.SUPPRESS, help="Increase logging verbosity."
    )
    g.add_argument(
        "--only-show-errors",
        action="store_true",
        default=argparse.SUPPRESS,
        help="Only show errors, suppressing warnings.",
    )


def add_no_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-wait", action="store_true", help="Do not wait for the long-running operation to finish."
    )


def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true", help="Do not prompt for confirmation.")
