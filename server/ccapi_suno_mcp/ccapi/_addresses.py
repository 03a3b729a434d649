"""Which hosts a media link may reach: public addresses only.

A task record is data from outside; a link in it could point at this machine or its network (a local service,
a router, a cloud metadata endpoint). So before a media request connects, its host is resolved (off the event
loop) and every address it resolves to is checked; the request then goes to the checked address itself, so a
second lookup cannot answer differently (DNS rebinding). Each redirect hop is checked the same way.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable

import anyio

from ccapi_suno_mcp.ccapi._errors import APIConnectionError, APITimeoutError, ForbiddenAddressError

__all__ = ["Resolver", "checked_address", "non_public_kind", "system_resolve"]

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves (host, port) to the addresses a connection may use."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT = 10.0
"""Seconds a media host's name may take to resolve (the connect timeout's share)."""


async def system_resolve(host: str, port: int) -> list[str]:
    """The system resolver (getaddrinfo, in a worker thread)."""
    found = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


def _embedded(address: IPAddress) -> list[IPAddress]:
    """Any IPv4 address `address` carries (IPv4-mapped, 6to4, Teredo), then the address itself."""
    found: list[IPAddress] = []
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            found.append(address.ipv4_mapped)
        if address.sixtofour is not None:
            found.append(address.sixtofour)
        if address.teredo is not None:
            found.extend(address.teredo)
    return [*found, address]


def non_public_kind(text: str) -> str | None:
    """What kind of non-public address `text` is ("loopback", "private", ...), or None for a public one."""
    for address in _embedded(ipaddress.ip_address(text.split("%", 1)[0])):
        for kind, applies in (
            ("unspecified", address.is_unspecified),
            ("loopback", address.is_loopback),
            ("link-local", address.is_link_local),
            ("multicast", address.is_multicast),
            ("reserved", address.is_reserved),
            ("private", address.is_private),
            ("non-public", not address.is_global),
        ):
            if applies:
                return kind
    return None


async def checked_address(host: str, port: int, resolve: Resolver) -> str:
    """An address of `host` to connect to, once every address it resolves to is known to be public.

    Raises:
        ForbiddenAddressError: the host is, or resolves to, a loopback, private, link-local or other
            non-public address. Nothing was connected to.
        APIConnectionError: the name does not resolve (`APITimeoutError`: not in time).
    """
    try:
        with anyio.fail_after(RESOLVE_TIMEOUT):
            addresses = [host] if _is_address(host) else await resolve(host, port)
    except TimeoutError:
        raise APITimeoutError(
            f"the file host {host} did not resolve within {RESOLVE_TIMEOUT:g} s", request_may_have_been_sent=False
        ) from None
    except OSError as exc:
        raise APIConnectionError(
            f"could not resolve the file host {host} ({exc})", request_may_have_been_sent=False
        ) from exc
    if not addresses:
        raise APIConnectionError(f"the file host {host} has no address", request_may_have_been_sent=False)
    for address in addresses:
        kind = non_public_kind(address)
        if kind is not None:
            shown = host if address == host else f"{host} ({address})"
            raise ForbiddenAddressError(
                f"Refused to download from {shown}: it is a {kind} address, and media links may only point to "
                "public hosts. Nothing was fetched."
            )
    return addresses[0].split("%", 1)[0]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
