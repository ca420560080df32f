"""From the host and port a program names to aiotcp connections and listeners.

asyncio's rules, kept: names are resolved with ``loop.getaddrinfo`` (never a
blocking call on the loop; an IP literal costs no resolver at all), every address
a name has is tried, in RFC 8305 order and staggered by ``happy_eyeballs_delay``
when asked, and ``local_addr`` may be a name too.  IPv4 and IPv6 alike: a
connection goes from an address of the destination's family.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import socket
from collections.abc import Sequence
from typing import Any

from aiotcp.driver import ConnectionDriver
from aiotcp.io import route
from aiotcp.resolve import AddrInfo, interleave, race, resolve
from aiotcp.stack import Stack


def is_link_local(host: object) -> bool:
    """An IPv6 link-local literal (fe80::/10), scoped or not.  The drop-in leaves
    those to the kernel: their scope id names an interface, and aiotcp's route
    lookups and connection keys carry none."""
    if not isinstance(host, str):
        return False
    try:
        packed = socket.inet_pton(socket.AF_INET6, host.partition("%")[0])
    except OSError:
        return False
    return packed[0] == 0xFE and packed[1] & 0xC0 == 0x80


def check_family(family: int) -> None:
    """``family`` as asyncio takes it: AF_UNSPEC (0), AF_INET or AF_INET6."""
    if family not in (socket.AF_UNSPEC, socket.AF_INET, socket.AF_INET6):
        raise OSError(errno.EAFNOSUPPORT, f"aiotcp is TCP over IP: family {family!r}")


def _ip(infos: Sequence[AddrInfo], what: str) -> list[AddrInfo]:
    """The IPv4 and IPv6 addresses among ``infos``, in their order."""
    found = [info for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not found:
        raise OSError(errno.EAFNOSUPPORT, f"{what} has no IP address")
    return found


async def connect(
    stack: Stack,
    host: str | None,
    port: int | str | None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    local_addr: tuple[str | None, int] | None = None,
    happy_eyeballs_delay: float | None = None,
    interleave_count: int | None = None,
    tcp_options: dict[str, Any],
) -> ConnectionDriver:
    """An established connection to the first of ``host``'s addresses that answers."""
    check_family(family)
    if host is None and port is None:
        raise ValueError("host and port was not specified and no sock specified")
    stack.options(None, **tcp_options)  # a misspelt option fails before any lookup
    loop = stack.loop
    remote = _ip(
        await resolve(loop, host, port, family=family, proto=proto, flags=flags),
        f"{host!r}",
    )
    local: list[AddrInfo] | None = None
    if local_addr is not None:
        local = _ip(
            await resolve(loop, local_addr[0], local_addr[1], family=family, proto=proto),
            f"local address {local_addr!r}",
        )
    return await connect_resolved(
        stack,
        remote,
        local,
        happy_eyeballs_delay=happy_eyeballs_delay,
        interleave_count=interleave_count,
        tcp_options=tcp_options,
    )


async def connect_resolved(
    stack: Stack,
    remote: Sequence[AddrInfo],
    local: Sequence[AddrInfo] | None,
    *,
    happy_eyeballs_delay: float | None,
    interleave_count: int | None,
    tcp_options: dict[str, Any],
) -> ConnectionDriver:
    """``connect`` after the lookups: every address of ``remote`` in RFC 8305
    order, from one of ``local``'s (what aiohappyeyeballs is given by aiohttp)."""
    remote = _ip(remote, "the addresses given")
    if local is not None:
        local = _ip(local, "the local addresses given")
    if interleave_count is None and happy_eyeballs_delay is not None:
        interleave_count = 1  # RFC 8305 §4, as asyncio does
    if interleave_count:
        remote = interleave(remote, interleave_count)
    attempts = [
        functools.partial(_connect_one, stack, info[4], local, tcp_options) for info in remote
    ]
    return await race(attempts, happy_eyeballs_delay, discard=_discard)


async def _connect_one(
    stack: Stack,
    address: tuple[Any, ...],
    local: Sequence[AddrInfo] | None,
    tcp_options: dict[str, Any],
) -> ConnectionDriver:
    """One address, from each local address in turn until one can be bound (asyncio's
    order): a port in use is a bind error, not the remote's."""
    host, port = address[0], address[1]
    if local is None:
        return await stack.connect(host, port, **tcp_options)
    family = route.family_of(host)
    local = [info for info in local if info[0] == family]  # asyncio skips the others
    if not local:
        raise OSError(f"no matching local address with family={family!r} found")
    bind_error: OSError | None = None
    for info in local:
        laddr = info[4]
        try:
            return await stack.connect(host, port, local_addr=(laddr[0], laddr[1]), **tcp_options)
        except OSError as exc:
            if exc.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                raise
            strerror = (exc.strerror or str(exc)).lower()
            bind_error = OSError(
                exc.errno, f"error while attempting to bind on address {laddr!r}: {strerror}"
            )
    assert bind_error is not None
    raise bind_error


def _discard(driver: ConnectionDriver) -> None:
    """A Happy Eyeballs loser that connected anyway: reset it, as asyncio closes its socket."""
    driver.abort()


_WILDCARD: dict[int, str | None] = {
    socket.AF_UNSPEC: None,
    socket.AF_INET: "0.0.0.0",
    socket.AF_INET6: "::",
}
"""What ``host=None`` listens on, by ``family``: asyncio binds every address of the
families ``family`` admits (one socket each; ``::`` with ``IPV6_V6ONLY``)."""


async def listen_address(
    loop: asyncio.AbstractEventLoop,
    host: str | Sequence[str] | None,
    port: int | str | None,
    *,
    family: int,
    flags: int,
) -> tuple[str | None, int]:
    """The one address (None: all of them, both families) and port a server listens on.

    asyncio binds a socket per address a name has; an aiotcp stack has one listener
    per port, so a host list (or a name) must come down to one address, or to all.
    """
    check_family(family)
    hosts: list[str | None] = [host] if host is None or isinstance(host, str) else list(host)
    if port is None:
        port = 0
    if all(h in (None, "") for h in hosts):
        if isinstance(port, int):
            return _WILDCARD[family], port
        hosts = [None]
    addresses: set[str | None] = set()
    number = 0
    for h in hosts:
        infos = _ip(await resolve(loop, h or None, port, family=family, flags=flags), f"{h!r}")
        # A name with both families ("localhost") listens on its IPv4 address, as
        # aiotcp did before it spoke IPv6; one with only IPv6 on that.
        ipv4 = [info for info in infos if info[0] == socket.AF_INET]
        for info in ipv4 or infos:
            ip, number = info[4][0], info[4][1]
            addresses.add(ip if h else _WILDCARD[family])
    if addresses == {"0.0.0.0", "::"}:
        addresses = {None}  # both wildcards: every address of both families
    if len(addresses) != 1:
        raise ValueError(
            f"aiotcp listens on one address per port (or on all): {host!r} gives "
            f"{sorted(a or '0.0.0.0' for a in addresses)}"
        )
    return addresses.pop(), number
