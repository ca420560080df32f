"""Two rtnetlink questions, asked as ``ip route get`` and ``ip neigh get`` ask them.

The AF_PACKET send path needs the outgoing interface and the neighbour's link
address for a destination.  ``/proc/net/route`` and ``/proc/net/arp`` answer for
IPv4 only (IPv6's neighbour table has no ``/proc`` file), and reading them meant
parsing whole tables in Python; one netlink request per question answers for both
families, follows policy routing exactly as the kernel's own TCP does (the kernel
runs its real lookup for an ``RTM_GETROUTE`` request) and costs a round trip.

A netlink socket belongs to the network namespace of the thread that opens it,
so the answers are about the namespace the stack runs in.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from typing import Final

NETLINK_ROUTE: Final = 0
NLMSG_ERROR: Final = 2
NLM_F_REQUEST: Final = 0x1
RTM_NEWROUTE: Final = 24
RTM_GETROUTE: Final = 26
RTM_NEWNEIGH: Final = 28
RTM_GETNEIGH: Final = 30
RTA_DST: Final = 1
RTA_OIF: Final = 4
RTA_GATEWAY: Final = 5
NDA_DST: Final = 1
NDA_LLADDR: Final = 2
NUD_VALID: Final = 0x02 | 0x04 | 0x08 | 0x10 | 0x40 | 0x80
"""REACHABLE, STALE, DELAY, PROBE, NOARP, PERMANENT: a link address the kernel
itself would send to (``NUD_VALID`` in ``include/net/neighbour.h``)."""

_NLMSGHDR: Final = struct.Struct("=IHHII")
_RTMSG: Final = struct.Struct("=BBBBBBBBI")
_NDMSG: Final = struct.Struct("=BBHiHBB")
_RTATTR: Final = struct.Struct("=HH")
_SEQ = iter(range(1, 1 << 31))


def _attribute(kind: int, data: bytes) -> bytes:
    length = _RTATTR.size + len(data)
    return _RTATTR.pack(length, kind) + data + b"\0" * (-length % 4)


def _attributes(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            return
        yield kind & 0x3FFF, data[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3


def _ask(kind: int, body: bytes, answer: int) -> bytes | None:
    """Send one request; the answer's payload (after the netlink header), or None
    when the kernel has none (no route, no neighbour entry)."""
    seq = next(_SEQ)
    message = _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, NLM_F_REQUEST, seq, 0) + body
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as sock:
        sock.send(message)
        data = sock.recv(65536)
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, msg_type, _, msg_seq, _ = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        payload = data[offset + _NLMSGHDR.size : offset + length]
        if msg_seq == seq:
            if msg_type == answer:
                return payload
            if msg_type == NLMSG_ERROR:
                (code,) = struct.unpack_from("=i", payload)
                if code in (-errno.ENETUNREACH, -errno.EHOSTUNREACH, -errno.ENOENT):
                    return None
                raise OSError(-code, os.strerror(-code))
        offset += (length + 3) & ~3
    return None


def route_get(dst: bytes) -> tuple[int, bytes] | None:
    """(outgoing ifindex, next-hop address) the kernel would use for ``dst`` (4 or 16
    bytes): the gateway, or ``dst`` itself when it is on link."""
    family = socket.AF_INET if len(dst) == 4 else socket.AF_INET6
    body = _RTMSG.pack(family, len(dst) * 8, 0, 0, 0, 0, 0, 0, 0) + _attribute(RTA_DST, dst)
    reply = _ask(RTM_GETROUTE, body, RTM_NEWROUTE)
    if reply is None:
        return None
    oif, gateway = None, dst
    for kind, value in _attributes(reply, _RTMSG.size):
        if kind == RTA_OIF:
            (oif,) = struct.unpack("=I", value)
        elif kind == RTA_GATEWAY and len(value) == len(dst):
            gateway = value
    return None if oif is None else (oif, gateway)


def neighbour_get(ifindex: int, address: bytes) -> bytes | None:
    """The link address the kernel has for ``address`` on ``ifindex``, if it would
    use it (a valid entry); None when unresolved, failed or absent."""
    family = socket.AF_INET if len(address) == 4 else socket.AF_INET6
    body = _NDMSG.pack(family, 0, 0, ifindex, 0, 0, 0) + _attribute(NDA_DST, address)
    reply = _ask(RTM_GETNEIGH, body, RTM_NEWNEIGH)
    if reply is None or len(reply) < _NDMSG.size:
        return None
    state = _NDMSG.unpack_from(reply)[4]
    if not state & NUD_VALID:
        return None
    for kind, value in _attributes(reply, _NDMSG.size):
        if kind == NDA_LLADDR:
            return value
    return None
