"""Fast firewall checks for the gateway: a route's allowed ranges compiled once, matched per accept."""

from __future__ import annotations

import ipaddress

from amr.logic.firewall import AddressRange


class SourceMatcher:
    """Decides whether a source address may connect, as ``amr.logic.firewall.source_allowed`` does,
    with the ranges parsed once: ``None`` allows everyone, an empty tuple nobody."""

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
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        value = int(address)
        for low, high in self._v4 if address.version == 4 else self._v6:
            if low <= value <= high:
                return True
        return False
