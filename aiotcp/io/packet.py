"""IPv4 + TCP parsing of what a raw IPPROTO_TCP socket delivers.

A raw IPv4 socket hands us the IP header too, so the addresses needed for the
TCP pseudo-header checksum come from the packet itself.  Everything here returns
a ``DropReason`` instead of raising: hostile or broken packets are counted, never
fatal (DESIGN.md).
"""

from __future__ import annotations

import struct

from aiotcp.core.segment import DropReason, Segment, decode

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
IPPROTO_TCP = 6


class Packet:
    """A received TCP segment with the addresses it travelled between."""

    __slots__ = ("dst", "segment", "src")

    def __init__(self, src: bytes, dst: bytes, segment: Segment) -> None:
        self.src = src
        self.dst = dst
        self.segment = segment

    def __repr__(self) -> str:
        return f"Packet({format_ip(self.src)}->{format_ip(self.dst)} {self.segment!r})"


def format_ip(addr: bytes) -> str:
    return ".".join(str(b) for b in addr)


def parse_ipv4_tcp(data: memoryview, *, verify_checksum: bool = True) -> Packet | DropReason:
    """Parse one IPv4 datagram carrying TCP.

    Fragments are dropped: the stack sets DF and advertises an MSS that fits the
    path, and the raw socket would see each fragment separately (only the kernel
    reassembles for real protocol handlers).
    """
    if len(data) < 20:
        return DropReason.TRUNCATED_IP
    vihl, tos, total, _ident, frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(data)
    if vihl >> 4 != 4:
        return DropReason.BAD_IP_VERSION
    ihl = (vihl & 0x0F) * 4
    if ihl < 20 or ihl > len(data):
        return DropReason.BAD_IP_HEADER_LENGTH
    if total < ihl or total > len(data):
        return DropReason.BAD_IP_TOTAL_LENGTH
    if frag & 0x3FFF:  # MF set or a non-zero offset
        return DropReason.IP_FRAGMENT
    if proto != IPPROTO_TCP:
        return DropReason.NOT_TCP
    if src[0] == 0 or src[0] >= 224:  # RFC 1122 §3.2.1.3: never a valid TCP source
        return DropReason.BAD_ADDRESS
    seg = decode(data[ihl:total], src, dst, verify_checksum=verify_checksum)
    if isinstance(seg, DropReason):
        return seg
    if seg.src_port == 0 or seg.dst_port == 0:
        return DropReason.BAD_PORT
    seg.ecn = tos & 3  # RFC 3168 §5: the ECN field, for the connection to echo CE
    return Packet(src, dst, seg)
