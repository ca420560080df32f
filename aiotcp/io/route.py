"""Route lookup: which local address and which MTU the kernel would use for a peer.

A connected UDP socket makes the kernel run its routing decision without sending
anything: ``getsockname()`` is then the source address it picked and ``IP_MTU``
the path MTU it knows.  That is one syscall pair instead of a netlink dump, and it
follows policy routing, per-namespace tables and cached PMTU exactly as the kernel
does for its own TCP.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass

IP_MTU = 14  # linux/in.h; not exported by the socket module
IPV6_MTU = 24  # linux/in6.h
IPV4_HEADER = 20
IPV6_HEADER = 40
TCP_HEADER = 20
DEFAULT_MTU = 1500


@dataclass(frozen=True, slots=True)
class Route:
    """The kernel's answer for one destination."""

    destination: str
    source: str
    """Local address the kernel would put in packets to ``destination``."""
    mtu: int
    """Path MTU; the MSS we advertise and use is derived from it."""

    @property
    def mss(self) -> int:
        """MSS for this path without options (RFC 9293 §3.7.1, RFC 6691)."""
        ip_header = IPV6_HEADER if family_of(self.destination) == socket.AF_INET6 else IPV4_HEADER
        return self.mtu - ip_header - TCP_HEADER


def lookup(destination: str) -> Route:
    """Ask the kernel how it would reach ``destination`` (IPv4 or IPv6 text).

    Raises ``OSError`` (ENETUNREACH, EHOSTUNREACH) when there is no route, the
    same error a kernel ``connect()`` would give.  That includes broadcast and
    multicast destinations (RFC 9293 §3.9.1.1, MUST-46): Linux's
    ``tcp_v4_connect`` refuses their routes with ENETUNREACH, where a UDP socket
    would accept a multicast address and say EACCES to a broadcast one
    (``tcp_v6_connect`` refuses multicast the same way).
    """
    family = family_of(destination)
    packed = socket.inet_pton(family, destination)
    if packed[0] >> 4 == 0xE if family == socket.AF_INET else packed[0] == 0xFF:
        raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((destination, 9))  # UDP connect sends nothing
        except PermissionError as exc:  # a broadcast route
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH)) from exc
        source = s.getsockname()[0]
        level, option = (
            (socket.IPPROTO_IP, IP_MTU)
            if family == socket.AF_INET
            else (socket.IPPROTO_IPV6, IPV6_MTU)
        )
        try:
            mtu = s.getsockopt(level, option)
        except OSError:
            mtu = DEFAULT_MTU
    return Route(destination, source, mtu)


def family_of(address: str) -> int:
    """AF_INET6 for an IPv6 literal, else AF_INET (text addresses only)."""
    return socket.AF_INET6 if ":" in address else socket.AF_INET


def default_ttl() -> int:
    """``net.ipv4.ip_default_ttl`` of this network namespace: the TTL the kernel's
    own sockets use unless told otherwise (``IP_TTL``)."""
    try:
        with open("/proc/sys/net/ipv4/ip_default_ttl") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 64  # RFC 1700's recommendation, Linux's default


def default_hop_limit(ifname: str) -> int:
    """The IPv6 hop limit the kernel's own sockets use on ``ifname`` unless told
    otherwise (``IPV6_UNICAST_HOPS``): ``net.ipv6.conf.<ifname>.hop_limit``."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/hop_limit") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 64  # Linux's default (RFC 4861's AdvCurHopLimit)


def resolve(host: str) -> str:
    """An address literal in its canonical text (RFC 5952 for IPv6), or a name's
    IPv4 address (names go through the resolver once)."""
    if ":" in host:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, host))
    try:
        socket.inet_aton(host)
    except OSError:
        return socket.gethostbyname(host)
    return socket.inet_ntoa(socket.inet_aton(host))


def check_local(address: str) -> None:
    """Raise ``OSError(EADDRNOTAVAIL)`` unless this host may use ``address`` as its
    own, as ``bind(2)`` would: the kernel decides (its ``ip_nonlocal_bind`` too),
    so a connection never leaves from an address that is not ours."""
    with socket.socket(family_of(address), socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
