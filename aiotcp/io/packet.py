"""IPv4 + TCP and IPv6 + TCP parsing of what the receive sockets deliver.

A raw IPv4 socket hands us the IP header too, so the addresses needed for the
TCP pseudo-header checksum come from the packet itself.  A raw IPv6 socket does
not: its segments' addresses come as the sender's address and an ``IPV6_PKTINFO``
control message (``Ipv6Receiver``).  Both sockets are read a burst at a time
(``RingReceiver``).  Whole IPv6 packets (pcaps, tests) go through
``parse_ipv6_tcp``.  Everything here returns a ``DropReason`` instead of raising:
hostile or broken packets are counted, never fatal.
"""

from __future__ import annotations

import collections
import socket
import struct
from typing import Final

from aiotcp.core.flow import FlowKey, flow_key
from aiotcp.core.segment import DropReason, Segment, decode
from aiotcp.io.mmsg import CONTROLLEN_AT, MMSGHDR_SIZE, SLOT, MessageRing
from aiotcp.io.pcap import PcapWriter

_IPV4: Final = struct.Struct("!BBHHHBBH4s4s")
_IPV6: Final = struct.Struct("!IHBB16s16s")  # version/class/flow, length, next, hops
IPV6_HEADER: Final = 40
IPPROTO_TCP: Final = 6


class Packet:
    """A received TCP segment with the addresses it travelled between."""

    __slots__ = ("dst", "segment", "src")

    def __init__(self, src: bytes, dst: bytes, segment: Segment) -> None:
        self.src = src
        self.dst = dst
        self.segment = segment

    def flow(self) -> FlowKey:
        """The key of the connection this packet is for, from this end's side."""
        seg = self.segment
        return flow_key(self.dst, seg.dst_port, self.src, seg.src_port)

    def __repr__(self) -> str:
        return f"Packet({format_ip(self.src)}->{format_ip(self.dst)} {self.segment!r})"


def format_ip(addr: bytes) -> str:
    """An address as text: dotted quad, or RFC 5952 for 16 bytes (never raises)."""
    if len(addr) == 4:
        return socket.inet_ntoa(addr)
    if len(addr) == 16:
        return socket.inet_ntop(socket.AF_INET6, addr)
    return ".".join(str(b) for b in addr)


def format_endpoint(addr: bytes, port: int) -> str:
    """Address and port as ``ss`` and URLs write them: ``198.18.0.1:80``, and IPv6
    in brackets, ``[fd00::1]:80``, where a bare colon would be ambiguous."""
    host = format_ip(addr)
    return f"[{host}]:{port}" if len(addr) == 16 else f"{host}:{port}"


def parse_ipv4_tcp(
    data: memoryview, *, verify_checksum: bool = True, partial_above: int = 0
) -> Packet | DropReason:
    """Parse one IPv4 datagram carrying TCP.

    Fragments are dropped: the stack sets DF and advertises an MSS that fits the
    path, and the raw socket would see each fragment separately (only the kernel
    reassembles for real protocol handlers).  A checksum field holding only the
    pseudo-header sum is trusted in a datagram longer than ``partial_above``: 0
    trusts every one; a wire's MTU trusts GRO aggregates only (``aiotcp.io.wires``).
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
    # RFC 3168 §5: the ECN field, for the connection to echo CE.
    return _tcp_packet(data[ihl:total], src, dst, tos & 3, verify_checksum, total > partial_above)


def _tcp_packet(
    tcp: memoryview, src: bytes, dst: bytes, ecn: int, verify_checksum: bool, trust_partial: bool
) -> Packet | DropReason:
    """The TCP segment of a parsed IP packet, as a ``Packet`` or a drop reason."""
    seg = decode(tcp, src, dst, verify_checksum=verify_checksum, trust_partial=trust_partial)
    if isinstance(seg, DropReason):
        return seg
    if seg.src_port == 0 or seg.dst_port == 0:
        return DropReason.BAD_PORT
    seg.ecn = ecn
    return Packet(src, dst, seg)


_UNSPECIFIED: Final = bytes(16)
_EXTENSION_HEADERS: Final = frozenset((0, 43, 44, 50, 51, 60, 135, 139, 140, 253, 254))
"""Hop-by-hop, routing, fragment, ESP, AH, destination options, mobility, HIP,
shim6, experiments (RFC 8200 §4, IANA's list)."""


def parse_ipv6_tcp(
    data: memoryview, *, verify_checksum: bool = True, partial_above: int = 0
) -> Packet | DropReason:
    """Parse one IPv6 packet carrying TCP right after its fixed header.

    Extension headers are dropped (counted): the stack sends none, and a capture's
    fragments of a TCP segment are not a whole segment.  Checksums as
    ``parse_ipv4_tcp``; the traffic class's low bits are the ECN field.
    """
    if len(data) < IPV6_HEADER:
        return DropReason.TRUNCATED_IP
    first, length, nxt, _hops, src, dst = _IPV6.unpack_from(data)
    if first >> 28 != 6:
        return DropReason.BAD_IP_VERSION
    end = IPV6_HEADER + length
    if end > len(data):
        return DropReason.BAD_IP_TOTAL_LENGTH
    if nxt != IPPROTO_TCP:
        return DropReason.IPV6_EXTENSION_HEADER if nxt in _EXTENSION_HEADERS else DropReason.NOT_TCP
    return _tcp6_packet(
        data[IPV6_HEADER:end], src, dst, (first >> 20) & 3, verify_checksum, end > partial_above
    )


def _tcp6_packet(
    tcp: memoryview, src: bytes, dst: bytes, ecn: int, verify_checksum: bool, trust_partial: bool
) -> Packet | DropReason:
    """``_tcp_packet`` for an IPv6 segment, whose source is checked first."""
    if src[0] == 0xFF or src == _UNSPECIFIED:  # RFC 9293 §3.9.2.3: never a TCP source
        return DropReason.BAD_ADDRESS
    return _tcp_packet(tcp, src, dst, ecn, verify_checksum, trust_partial)


_NATIVE_UINT: Final = struct.Struct("=I")
_CMSGHDR: Final = struct.Struct("=Qii")  # cmsg_len, cmsg_level, cmsg_type
_MSG_TRUNC: Final = 0x20
_MSG_CTRUNC: Final = 0x08


class RingReceiver:
    """How one socket's datagrams are read: a burst per ``recvmmsg`` into its
    ``MessageRing`` (``aiotcp.io.mmsg``), parsed where they landed, checksums
    checked or not, recorded in a pcap or not.

    The loop is here rather than in the raw socket's class so that it runs
    compiled: a bulk sender's ACKs or an echo's segments each wake the loop for a
    packet or two, and the interpreted loop was a good part of that wake-up's cost.
    """

    def __init__(self, ring: MessageRing, verify_checksum: bool, pcap: PcapWriter | None) -> None:
        self.ring = ring
        self.verify_checksum = verify_checksum
        self.pcap = pcap

    def drain(
        self, max_packets: int, counters: collections.Counter[str], packets: list[Packet]
    ) -> None:
        """One ``recvmmsg`` of up to ``max_packets``: the valid packets are appended
        to ``packets``, malformed ones counted by reason and left out."""
        ring = self.ring
        while True:
            try:
                count = ring.receive(max_packets)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            break
        meta, view = ring.meta, ring.view
        nbytes = 0
        for i in range(count):
            controllen, flags, n = _WRITTEN_BACK.unpack_from(meta, i * MMSGHDR_SIZE + CONTROLLEN_AT)
            nbytes += n
            if flags & (_MSG_TRUNC | _MSG_CTRUNC):
                parsed: Packet | DropReason = DropReason.TRUNCATED_IP
            else:
                parsed = self.parse(i, controllen, view[i * SLOT : i * SLOT + n])
            if isinstance(parsed, DropReason):
                counters["drop_" + parsed.value] += 1
            else:
                packets.append(parsed)
        if count:
            counters["rx_packets"] += count
            counters["rx_bytes"] += nbytes

    def parse(self, i: int, controllen: int, data: memoryview) -> Packet | DropReason:
        """The ``i``-th datagram of the last call, ``data``, with ``controllen``
        bytes of control messages."""
        raise NotImplementedError


class Ipv4Receiver(RingReceiver):
    """A raw IPv4 socket's datagrams, whose IP header carries the addresses.
    ``partial_above`` as in ``parse_ipv4_tcp``."""

    def __init__(
        self,
        ring: MessageRing,
        verify_checksum: bool,
        pcap: PcapWriter | None,
        partial_above: int = 0,
    ) -> None:
        super().__init__(ring, verify_checksum, pcap)
        self.partial_above = partial_above

    def parse(self, i: int, controllen: int, data: memoryview) -> Packet | DropReason:
        if self.pcap is not None:
            self.pcap.received(data)
        return parse_ipv4_tcp(
            data, verify_checksum=self.verify_checksum, partial_above=self.partial_above
        )


class Ipv6Receiver(RingReceiver):
    """The raw IPv6 socket's segments, which come without their IPv6 header: the
    source as the sender's address, the destination, interface and traffic class
    as control messages, all read where the kernel wrote them.  A segment from a
    wire (``wire_mtus``: interface → MTU) trusts a partial checksum only when it is
    longer than the wire's MTU, as ``parse_ipv4_tcp``'s ``partial_above``."""

    def __init__(
        self,
        ring: MessageRing,
        verify_checksum: bool,
        pcap: PcapWriter | None,
        wire_mtus: dict[int, int],
    ) -> None:
        super().__init__(ring, verify_checksum, pcap)
        if ring.name_size != _SOCKADDR_IN6:
            raise ValueError(f"a sockaddr_in6 needs {_SOCKADDR_IN6} bytes of room")
        self.wire_mtus = wire_mtus

    def parse(self, i: int, controllen: int, data: memoryview) -> Packet | DropReason:
        """The sender's address and the control messages lie side by side at
        ``aux``; the usual pair is read with one ``struct`` call."""
        ring = self.ring
        meta = ring.meta
        aux = ring.aux_at + i * ring.aux_size
        if controllen == _USUAL_CONTROL.size - _SOCKADDR_IN6:
            fields = _USUAL_CONTROL.unpack_from(meta, aux)
            src, dst, ifindex, tclass = fields[0], fields[4], fields[5], fields[9]
            if fields[1:4] + fields[6:9] != _USUAL_KINDS:
                dst, ifindex, tclass = _control(meta, aux + _SOCKADDR_IN6, controllen)
        else:
            src = bytes(meta[aux + 8 : aux + 24])
            dst, ifindex, tclass = _control(meta, aux + _SOCKADDR_IN6, controllen)
        if len(dst) != 16:
            return DropReason.BAD_ADDRESS
        if self.pcap is not None:
            self.pcap.received6(src, dst, data, tclass)
        trust_partial = IPV6_HEADER + len(data) > self.wire_mtus.get(ifindex, 0)
        return _tcp6_packet(data, src, dst, tclass & 3, self.verify_checksum, trust_partial)


_WRITTEN_BACK: Final = struct.Struct("=Qi4xI")
"""An ``mmsghdr``'s control length, flags and received length."""
_SOCKADDR_IN6: Final = 32
"""The room for a ``sockaddr_in6`` (28 bytes, 8-aligned)."""
_USUAL_CONTROL: Final = struct.Struct("=8x16s8x" + "Qii16sI4x" + "QiiI4x")
"""A sender's ``sockaddr_in6`` and the two control messages as Linux writes them:
``IPV6_PKTINFO`` (``in6_pktinfo``: address, interface) then ``IPV6_TCLASS``."""
_USUAL_KINDS: Final = (
    socket.CMSG_LEN(20),
    socket.IPPROTO_IPV6,
    socket.IPV6_PKTINFO,
    socket.CMSG_LEN(4),
    socket.IPPROTO_IPV6,
    socket.IPV6_TCLASS,
)


def _control(meta: bytearray, at: int, length: int) -> tuple[bytes, int, int]:
    """Destination, interface and traffic class from any control messages at
    ``meta[at:at + length]``: the general walk behind ``_USUAL_CONTROL``."""
    dst = b""
    ifindex = tclass = 0
    end = at + length
    while at + _CMSGHDR.size <= end:
        size, level, kind = _CMSGHDR.unpack_from(meta, at)
        if size < _CMSGHDR.size:
            break
        data = at + _CMSGHDR.size
        if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
            dst = bytes(meta[data : data + 16])
            ifindex = _NATIVE_UINT.unpack_from(meta, data + 16)[0]
        elif level == socket.IPPROTO_IPV6 and kind == socket.IPV6_TCLASS:
            tclass = _NATIVE_UINT.unpack_from(meta, data)[0]
        at += (size + 7) & ~7
    return dst, ifindex, tclass
