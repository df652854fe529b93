"""Who may connect to a database endpoint: firewall rules, public network access, private networks."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from amr.errors import InvalidParameter

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressRange = tuple[str, str]


def parse_address(text: str, field: str) -> Address:
    """An IPv4 or IPv6 address; InvalidParameter naming ``field`` otherwise."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError as e:
        raise InvalidParameter(
            f"'{field}' must be an IPv4 or IPv6 address such as 203.0.113.10 or 2001:db8::1, not '{text}'.",
            target=field,
        ) from e


def validate_rule_range(start_ip: str, end_ip: str) -> AddressRange:
    """A firewall rule's range: both ends of one family, start <= end. Returns them normalised."""
    start = parse_address(start_ip, "properties.startIP")
    end = parse_address(end_ip, "properties.endIP")
    if start.version != end.version:
        raise InvalidParameter(
            f"startIP {start} and endIP {end} must both be IPv4 or both be IPv6.", target="properties.endIP"
        )
    if int(start) > int(end):
        raise InvalidParameter(
            f"startIP {start} must not be greater than endIP {end}.", target="properties.startIP"
        )
    return str(start), str(end)


def cidr_range(cidr: str) -> AddressRange:
    """The first and last address of a CIDR block such as 10.0.0.0/8."""
    network = ipaddress.ip_network(cidr.strip(), strict=False)
    return str(network[0]), str(network[-1])


def plan_allowed_sources(
    public_network_access: bool, rules: Iterable[AddressRange], private_networks: Iterable[str]
) -> tuple[AddressRange, ...] | None:
    """Decide who may connect to a database's endpoint. ``None`` means everyone.

    - publicNetworkAccess Disabled: only the private networks (none by default: nobody).
    - Enabled without firewall rules: everyone.
    - Enabled with rules: sources inside a rule, plus the private networks (as private endpoints
      bypass the firewall in Azure).
    """
    private = tuple(cidr_range(c) for c in private_networks)
    rule_ranges = tuple(rules)
    if not public_network_access:
        return private
    if not rule_ranges:
        return None
    return tuple(sorted(set(rule_ranges + private)))


def source_allowed(source: str, allowed: tuple[AddressRange, ...] | None) -> bool:
    """Whether a connection from ``source`` may proceed under ``allowed`` (None: everyone)."""
    return SourceMatcher(allowed).allows(source)


class SourceMatcher:
    """Decides whether a source address may connect under a route's allowed ranges, parsed once (the
    gateway builds one per route and asks it on every accept): ``None`` allows everyone, an empty
    tuple nobody. A range whose ends are not addresses of one family matches nothing."""

    __slots__ = ("allowed", "_v4", "_v6")

    def __init__(self, allowed: tuple[AddressRange, ...] | None) -> None:
        self.allowed = allowed
        self._v4: list[tuple[int, int]] = []
        self._v6: list[tuple[int, int]] = []
        for first, last in allowed or ():
            try:
                low, high = ipaddress.ip_address(first), ipaddress.ip_address(last)
            except ValueError:
                continue
            if low.version != high.version:
                continue
            (self._v4 if low.version == 4 else self._v6).append((int(low), int(high)))

    def allows(self, source: str) -> bool:
        """Whether a connection from ``source`` (as the socket reports it) may proceed."""
        if self.allowed is None:
            return True
        try:
            address = ipaddress.ip_address(source.split("%", 1)[0])
        except ValueError:
            return False
        # A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6: rules name them as IPv4.
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        value = int(address)
        for low, high in self._v4 if address.version == 4 else self._v6:
            if low <= value <= high:
                return True
        return False
