"""Which proxy a request goes through: ``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` and ``NO_PROXY``, as curl reads them.

The variables are read once, when the client is made (``ProxySettings.from_env``);
lower-case names win over upper-case ones, as in curl and the stdlib.
``NO_PROXY`` is a comma-separated list of: ``*`` (no proxy at all), host names
(``example.com`` and ``.example.com`` both cover ``example.com`` and every
name under it), IP addresses, CIDR blocks (``10.0.0.0/8``, ``fd00::/8``),
each optionally with ``:port``. Nothing is bypassed implicitly, not even
``localhost``: list it when the proxy cannot reach it.
"""

from __future__ import annotations

import ipaddress
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class _Bypass:
    host: str = ""  # a host name (lower-case, no leading dot) or ""
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def covers(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        return host == self.host or host.endswith("." + self.host)


def _parse_bypass(entry: str) -> _Bypass | None:
    entry = entry.strip().lower()
    if not entry:
        return None
    port = None
    if entry.startswith("["):  # [v6]:port
        address, _, rest = entry[1:].partition("]")
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
        entry = address
    elif entry.count(":") == 1:  # host:port (a bare IPv6 address has several colons)
        name, _, maybe_port = entry.partition(":")
        if maybe_port.isdigit():
            entry, port = name, int(maybe_port)
    try:
        return _Bypass(network=ipaddress.ip_network(entry, strict=False), port=port)
    except ValueError:
        pass
    name = entry.lstrip("*").lstrip(".")
    return _Bypass(host=name, port=port) if name else None


@dataclass(frozen=True)
class ProxySettings:
    """Proxy URLs by scheme and the hosts that bypass them."""

    proxies: Mapping[str, str] = field(default_factory=dict)  # "http" / "https" -> proxy URL
    bypass: tuple[_Bypass, ...] = ()
    bypass_all: bool = False

    @classmethod
    def from_env(cls) -> "ProxySettings":
        found = urllib.request.getproxies_environment()
        proxies: dict[str, str] = {}
        for scheme in ("http", "https"):
            url = found.get(scheme) or found.get("all")
            if url:
                proxies[scheme] = url if "://" in url else f"http://{url}"
        entries = [e for e in found.get("no", "").split(",") if e.strip()]
        bypass_all = any(e.strip() == "*" for e in entries)
        parsed = tuple(b for b in (_parse_bypass(e) for e in entries if e.strip() != "*") if b is not None)
        return cls(proxies=proxies, bypass=parsed, bypass_all=bypass_all)

    def proxy_for(self, scheme: str, host: str, port: int) -> str | None:
        """The proxy URL for a request to ``scheme://host:port``, or None to connect directly."""
        proxy = self.proxies.get(scheme)
        if proxy is None or self.bypass_all:
            return None
        host = host.lower().strip("[]").rstrip(".")
        if any(b.covers(host, port) for b in self.bypass):
            return None
        return proxy

