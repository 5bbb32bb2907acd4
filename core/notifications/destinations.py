"""Where webhooks may be sent: the destination policy (SSRF protection), checked at create/update and at send time.

A target is refused when

* its scheme is not https while ``SM_WEBHOOK_REQUIRE_HTTPS`` is on (the default in production), or not http(s);
* it carries credentials (``user:pass@``) or is longer than ``MAX_URL_CHARS``;
* its host does not resolve, or ANY address it resolves to is not public — loopback, private, link-local (the
  169.254.169.254 cloud metadata service), multicast, unspecified, shared (100.64/10), documentation, benchmark,
  reserved, or an IPv6 form embedding such an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo) — unless
  ``SM_WEBHOOK_ALLOW_PRIVATE`` is on or the host name, the address or a network containing it is listed in
  ``SM_WEBHOOK_ALLOWED_HOSTS``.

Numeric host forms (``2130706433``, ``0x7f000001``, ``127.1``, ``0177.0.0.1``) are read as the addresses they
are (``inet_aton`` rules, as every resolver does) without asking the resolver; other names go through the
resolver, a plain function ``(host, port) -> addresses`` (``system_resolver`` by default, replaceable in tests to
simulate DNS rebinding). ``check`` returns a ``Destination`` with the vetted addresses: the worker connects to one
of them (``pinned_request``), keeping the original ``Host`` header and the TLS SNI / certificate name, so a name
that resolves to a private address between the check and the connection is never reached.

Errors name the rule (``DestinationRefused.reason`` is a short code such as ``loopback``) and never echo the URL
(its path or query may hold a token) nor the addresses a name resolved to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from core.config import Settings
from core.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``resolver(host, port)`` → the addresses (strings) the name resolves to; raises ``OSError`` when it does not.
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_CHARS = 2048
MAX_HOST_CHARS = 253
RESOLVE_TIMEOUT_S = 5.0

_SHARED = (ipaddress.ip_network("100.64.0.0/10"),)
_DOCUMENTATION = tuple(
    ipaddress.ip_network(n)
    for n in (
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "233.252.0.0/24",
        "2001:db8::/32",
        "3fff::/20",
    )
)
_BENCHMARK = tuple(ipaddress.ip_network(n) for n in ("198.18.0.0/15", "2001:2::/48"))
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",  # unique local
        "fec0::/10",  # site-local (deprecated)
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215)
    )
)
_RESERVED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "240.0.0.0/4",
        "100::/64",  # discard-only
        "::/96",  # IPv4-compatible (deprecated)
        "2001::/23",  # IETF protocol assignments (Teredo not embedding a non-public address falls here)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

#: Human wording of each reason (used in the 422 detail and the docs).
REASONS: dict[str, str] = {
    "scheme": "only https targets are accepted (SM_WEBHOOK_REQUIRE_HTTPS is on)",
    "bad_scheme": "the target must be an http or https URL",
    "credentials": "targets with credentials in the URL (user:password@) are refused",
    "too_long": f"targets longer than {MAX_URL_CHARS} characters are refused",
    "no_host": "the target has no valid host",
    "unresolvable": "the target's host name does not resolve",
    "unspecified": "targets on the unspecified address (0.0.0.0, ::) are refused",
    "loopback": "targets on loopback addresses are refused",
    "link_local": "targets on link-local addresses (including the 169.254.169.254 metadata service) are refused",
    "multicast": "targets on multicast addresses are refused",
    "private": "targets on private addresses are refused",
    "shared": "targets on shared address space (100.64.0.0/10, carrier-grade NAT) are refused",
    "documentation": "targets on documentation address ranges are refused",
    "benchmark": "targets on benchmarking address ranges are refused",
    "reserved": "targets on reserved or non-global addresses are refused",
}
#: Reasons that the allow settings can lift (the rest are about the URL itself).
ADDRESS_REASONS = frozenset(REASONS) - {
    "scheme",
    "bad_scheme",
    "credentials",
    "too_long",
    "no_host",
    "unresolvable",
}
_HOW_TO_ALLOW = "; set SM_WEBHOOK_ALLOW_PRIVATE=true or add the host to SM_WEBHOOK_ALLOWED_HOSTS to allow it"


class DestinationRefused(ValidationFailed):
    """The webhook target breaks the destination policy; ``reason`` is the rule's code (``REASONS``)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        message = REASONS.get(reason, "the target is refused")
        if reason in ADDRESS_REASONS:
            message += _HOW_TO_ALLOW
        super().__init__(
            message,
            errors=[{"loc": ["body", "target"], "msg": message, "type": f"destination_{reason}"}],
            extra={"reason": reason},
        )


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries (IPv4-mapped, NAT64 well-known prefix, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    if ip in _NAT64:
        return [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        return list(ip.teredo)
    return []


def address_class(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination (a ``REASONS`` code), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
        embedded = _embedded_v4(ip)
        if embedded:
            reasons = [r for r in map(address_class, embedded) if r is not None]
            if reasons:
                return reasons[0]
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return None  # the same public IPv4 host
    checks: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
        ("unspecified", lambda a: a.is_unspecified),
        ("loopback", lambda a: a.is_loopback),
        ("link_local", lambda a: a.is_link_local),
        ("multicast", lambda a: a.is_multicast),
        ("shared", lambda a: _within(a, _SHARED)),
        ("documentation", lambda a: _within(a, _DOCUMENTATION)),
        ("benchmark", lambda a: _within(a, _BENCHMARK)),
        ("private", lambda a: _within(a, _PRIVATE)),
        ("reserved", lambda a: _within(a, _RESERVED) or a.is_reserved or a.is_private or not a.is_global),
    )
    for reason, test in checks:
        if test(ip):
            return reason
    return None


def _within(ip: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(ip.version == n.version and ip in n for n in networks)


_NUMERIC_V4 = re.compile(r"^[0-9a-fA-FxX.]+$")


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as an IP literal stands for, in any form a resolver accepts: dotted, bracketed
    IPv6, and the legacy ``inet_aton`` forms (``2130706433``, ``0x7f000001``, ``127.1``, ``0177.0.0.1``)."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if _NUMERIC_V4.match(text) and any(c.isdigit() for c in text):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``getaddrinfo`` returns for ``host`` (IPv4 and IPv6), in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Destination:
    """A vetted target: the URL and the addresses it may be connected to (every one checked)."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    @property
    def host(self) -> str:
        return self.url.host

    def pinned_request(self, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """``(url, headers, extensions)`` to connect to ``address`` while speaking to the original host: the URL's
        host is the address, ``Host`` is the original one and TLS uses the name for SNI and the certificate."""
        if address not in self.addresses:
            raise ValueError("not a vetted address of this destination")
        headers = {"Host": self.url.netloc.decode("ascii")}
        extensions: dict[str, Any] = {}
        if self.url.scheme == "https" and literal_address(self.url.host) is None:
            extensions["sni_hostname"] = self.url.raw_host.decode("ascii")
        return self.url.copy_with(host=str(address)), headers, extensions


def _parse_allowed(entries: Iterable[str]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    names: set[str] = set()
    networks: list[IPNetwork] = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text.strip("[]"), strict=False))
        except ValueError:
            names.add(text.lower().rstrip("."))
    return frozenset(names), tuple(networks)


@dataclass
class DestinationPolicy:
    """The rules above; ``from_settings`` reads them from ``Settings``."""

    require_https: bool = True
    allow_private: bool = False
    allowed_names: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver = field(default=system_resolver)
    resolve_timeout_s: float = RESOLVE_TIMEOUT_S

    @classmethod
    def from_settings(cls, settings: Settings, *, resolver: Resolver | None = None) -> DestinationPolicy:
        names, networks = _parse_allowed(settings.webhook_allowed_hosts)
        return cls(
            require_https=bool(settings.webhook_require_https),
            allow_private=settings.webhook_allow_private,
            allowed_names=names,
            allowed_networks=networks,
            resolver=resolver or system_resolver,
        )

    def check_url(self, target: str) -> tuple[httpx.URL, IPAddress | None]:
        """The URL rules (no resolution): the parsed URL and its literal address, if the host is one."""
        if len(target) > MAX_URL_CHARS:
            raise DestinationRefused("too_long")
        try:
            url = httpx.URL(target)
        except (httpx.InvalidURL, ValueError, TypeError):
            raise DestinationRefused("no_host") from None
        if url.scheme not in {"http", "https"}:
            raise DestinationRefused("bad_scheme")
        if self.require_https and url.scheme != "https":
            raise DestinationRefused("scheme")
        if url.userinfo:
            raise DestinationRefused("credentials")
        host = url.raw_host.decode("ascii", "replace")
        if not host or len(host) > MAX_HOST_CHARS:
            raise DestinationRefused("no_host")
        return url, literal_address(host)

    def allowed(self, host: str, address: IPAddress) -> bool:
        """Whether ``address`` (of ``host``) may be connected to."""
        if self.allow_private or address_class(address) is None:
            return True
        if host.lower().rstrip(".") in self.allowed_names:
            return True
        return _within(address, self.allowed_networks)

    def vet(self, host: str, addresses: Sequence[IPAddress]) -> None:
        """Raise ``DestinationRefused`` unless every address may be connected to."""
        if not addresses:
            raise DestinationRefused("unresolvable")
        for address in addresses:
            if not self.allowed(host, address):
                raise DestinationRefused(address_class(address) or "reserved")

    async def resolve(self, host: str, port: int) -> tuple[IPAddress, ...]:
        try:
            answers = await asyncio.wait_for(
                asyncio.to_thread(self.resolver, host, port), timeout=self.resolve_timeout_s
            )
            return tuple(dict.fromkeys(ipaddress.ip_address(str(a).split("%", 1)[0]) for a in answers))
        except (OSError, UnicodeError, ValueError, TimeoutError):
            raise DestinationRefused("unresolvable") from None

    async def check(self, target: str) -> Destination:
        """Check ``target`` (URL rules, resolution, every address); the vetted ``Destination`` or
        ``DestinationRefused``."""
        url, literal = self.check_url(target)
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = (literal,) if literal is not None else await self.resolve(host, port)
        self.vet(host, addresses)
        return Destination(url, addresses)


__all__ = [
    "ADDRESS_REASONS",
    "MAX_URL_CHARS",
    "REASONS",
    "Destination",
    "DestinationPolicy",
    "DestinationRefused",
    "Resolver",
    "address_class",
    "literal_address",
    "system_resolver",
]
