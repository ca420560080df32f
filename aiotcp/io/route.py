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
IPV4_HEADER = 20
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
        return self.mtu - IPV4_HEADER - TCP_HEADER


def lookup(destination: str) -> Route:
    """Ask the kernel how it would reach ``destination``.

    Raises ``OSError`` (ENETUNREACH, EHOSTUNREACH) when there is no route, the
    same error a kernel ``connect()`` would give.  That includes broadcast and
    multicast destinations (RFC 9293 §3.9.1.1, MUST-46): Linux's
    ``tcp_v4_connect`` refuses their routes with ENETUNREACH, where a UDP socket
    would accept a multicast address and say EACCES to a broadcast one.
    """
    if socket.inet_aton(destination)[0] >> 4 == 0xE:  # 224.0.0.0/4
        raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((destination, 9))  # UDP connect sends nothing
        except PermissionError as exc:  # a broadcast route
            raise OSError(errno.ENETUNREACH, os.strerror(errno.ENETUNREACH)) from exc
        source = s.getsockname()[0]
        try:
            mtu = s.getsockopt(socket.IPPROTO_IP, IP_MTU)
        except OSError:
            mtu = DEFAULT_MTU
    return Route(destination, source, mtu)


def default_ttl() -> int:
    """``net.ipv4.ip_default_ttl`` of this network namespace: the TTL the kernel's
    own sockets use unless told otherwise (``IP_TTL``)."""
    try:
        with open("/proc/sys/net/ipv4/ip_default_ttl") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 64  # RFC 1700's recommendation, Linux's default


def resolve(host: str) -> str:
    """Dotted-quad IPv4 address for ``host`` (names go through the resolver once)."""
    try:
        socket.inet_aton(host)
    except OSError:
        return socket.gethostbyname(host)
    return socket.inet_ntoa(socket.inet_aton(host))


def check_local(address: str) -> None:
    """Raise ``OSError(EADDRNOTAVAIL)`` unless this host may use ``address`` as its
    own, as ``bind(2)`` would: the kernel decides (its ``ip_nonlocal_bind`` too),
    so a connection never leaves from an address that is not ours."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((address, 0))
