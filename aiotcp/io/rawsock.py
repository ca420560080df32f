"""The raw TCP sockets: filtered, non-blocking, batch receive, checksummed send.

Receive path (docs/architecture.md): the kernel-side BPF filter drops packets for ports
we do not own before Python wakes up; ``recv_batch`` then takes each socket's
burst with one ``recvmmsg`` into buffers allocated once (``aiotcp.io.mmsg``), so a
burst costs one system call and no allocation.  The packets of a batch are
memoryviews into those buffers and stay valid only until the next ``recv_batch``
— consumers copy what they keep (the receive buffer does).

Send path: the kernel builds the IP header (no ``IP_HDRINCL``), and an
``IP_PKTINFO`` control message pins the source address so it always matches the
address the TCP checksum was computed over.

IPv6 has a raw socket of its own, for both directions.  It hands over segments
without the IPv6 header, the destination address in an ``IPV6_PKTINFO`` control
message, so it is read a burst at a time with ``recvmmsg`` (``aiotcp.io.mmsg``).
A packet socket would give whole packets, but it sees them before netfilter, so a
host's ip6tables INPUT rules would not apply to aiotcp's IPv6 as they apply to its
IPv4 and to the kernel's TCP.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import socket
import struct
from collections.abc import Iterable, Mapping, Sequence

from aiotcp.core.segment import Segment, encode
from aiotcp.io import bpf
from aiotcp.io.flow_share import FlowShare
from aiotcp.io.mmsg import MessageRing
from aiotcp.io.packet import Ipv4Receiver, Ipv6Receiver, Packet
from aiotcp.io.pcap import PcapWriter
from aiotcp.io.privileges import MissingPrivilegeError, raw_socket
from aiotcp.io.wires import Wire

IP_PKTINFO = 8  # linux/in.h; the socket module lacks it before Python 3.12
_Socket = socket.socket  # the class has a ``socket`` property: annotations use this


class RawSocket:
    """A stack's raw IP socket, through which every segment goes; plus, on a host
    with wires (``aiotcp.io.wires``), a receive-only socket per wire, so its
    packets are told apart without a per-packet cost."""

    def __init__(
        self,
        *,
        port_ranges: Iterable[tuple[int, int]] = (),
        rcvbuf: int = 4 << 20,
        sndbuf: int = 4 << 20,
        verify_checksum: bool = True,
        wires: Sequence[Wire] = (),
    ) -> None:
        self._wires = list(wires)
        """Interfaces whose packets have a socket of their own (``aiotcp.io.wires``)."""
        self._shares: Mapping[int, FlowShare] = {}
        """Ports shared by a ``reuse_port`` group, with this worker's flows."""
        self._wire_socks: list[socket.socket] = []
        self._sock6: socket.socket | None = None
        """IPv6's raw socket, both ways (None where the kernel has no IPv6)."""
        ranges = list(port_ranges)
        self._sock = self._open(ranges, rcvbuf, sndbuf, None)
        try:
            for wire in self._wires:
                self._wire_socks.append(self._open(ranges, rcvbuf, sndbuf, wire.index))
        except BaseException:
            self.close()
            raise
        try:
            self._sock6 = self._open_ipv6(ranges, rcvbuf, sndbuf)
        except BaseException:
            self.close()
            raise
        wire_mtus = [wire.mtu for wire in self._wires]
        sources = [(self._sock, 0), *zip(self._wire_socks, wire_mtus, strict=True)]
        self._rings4 = [
            (MessageRing(sock, name_size=0, control_size=0), above) for sock, above in sources
        ]
        """What ``recv_batch`` reads for IPv4: (ring, ``partial_above``)."""
        self._wire_mtus = {wire.index: wire.mtu for wire in self._wires}
        """IPv6's segments say their interface: a wire's are told apart by it."""
        self._ring6 = None if self._sock6 is None else MessageRing(self._sock6)
        """IPv6's receive buffers; all of them take a burst per system call
        (``aiotcp.io.mmsg``)."""
        self._pktinfo: dict[bytes, list[tuple[int, int, bytes]]] = {}
        self.verify_checksum = verify_checksum
        self.pcap: PcapWriter | None = None
        """When set, every datagram received and every segment sent is recorded."""
        self.counters: collections.Counter[str] = collections.Counter()

    def _open(
        self, ranges: list[tuple[int, int]], rcvbuf: int, sndbuf: int, wire: int | None
    ) -> socket.socket:
        """A raw socket admitting ``ranges``: from interface ``wire`` only, or (None)
        from every interface that is not one of the wires."""
        sock = raw_socket(socket.AF_INET, socket.IPPROTO_TCP, "a raw socket")
        return _configured(sock, self._filter(ranges, wire), rcvbuf, sndbuf)

    def _open_ipv6(
        self, ranges: list[tuple[int, int]], rcvbuf: int, sndbuf: int
    ) -> socket.socket | None:
        """IPv6's raw socket where the kernel has IPv6, telling each segment's
        destination address, interface and traffic class."""
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_TCP)
        except OSError as exc:
            if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
                return None
            raise MissingPrivilegeError("cannot open a raw IPv6 socket") from exc
        options = (socket.IPV6_RECVPKTINFO, socket.IPV6_RECVTCLASS)
        return _configured(sock, bpf.tcp6_dst_port_filter(ranges), rcvbuf, sndbuf, options)

    def _filter(self, ranges: Iterable[tuple[int, int]], wire: int | None) -> list[bpf.Insn]:
        if wire is not None:
            return bpf.tcp_dst_port_filter(ranges, only_interface=wire, shares=self._shares)
        others = [w.index for w in self._wires]
        return bpf.tcp_dst_port_filter(ranges, not_interfaces=others, shares=self._shares)

    def fileno(self) -> int:
        return self._sock.fileno()

    def filenos(self) -> list[int]:
        """Every socket the stack must watch: this one, one per wire, IPv6's."""
        six = [] if self._sock6 is None else [self._sock6]
        return [self._sock.fileno(), *(s.fileno() for s in (*self._wire_socks, *six))]

    @property
    def socket(self) -> socket.socket:
        return self._sock

    def set_port_ranges(
        self, ranges: Iterable[tuple[int, int]], shares: Mapping[int, FlowShare] | None = None
    ) -> None:
        """Replace the BPF filters: only TCP to these destination ports wakes us up,
        and of a port in ``shares`` only this worker's flows (``aiotcp.io.flow_share``)."""
        ranges = list(ranges)
        self._shares = dict(shares or {})
        bpf.attach(self._sock, self._filter(ranges, None))
        if self._sock6 is not None:
            bpf.attach(self._sock6, bpf.tcp6_dst_port_filter(ranges, self._shares))
        for wire, sock in zip(self._wires, self._wire_socks, strict=True):
            bpf.attach(sock, self._filter(ranges, wire.index))

    def recv_batch(self, max_packets: int = 256, fd: int | None = None) -> list[Packet]:
        """Each socket's waiting burst (only socket ``fd``'s, when given), up to
        ``max_packets`` (and the ring's slots) from each: what is left waits for the
        next call, the socket still readable.

        Returns the valid packets; malformed ones are counted in ``counters`` by
        reason and left out.  A wire's packets trust a partial checksum only when
        they are longer than its MTU (GRO aggregates).
        """
        packets: list[Packet] = []
        verify, pcap, counters = self.verify_checksum, self.pcap, self.counters
        for ring, partial_above in self._rings4:
            if fd is None or ring.fd == fd:
                receiver = Ipv4Receiver(ring, verify, pcap, partial_above)
                receiver.drain(max_packets, counters, packets)
        ring6 = self._ring6
        if ring6 is not None and (fd is None or ring6.fd == fd):
            Ipv6Receiver(ring6, verify, pcap, self._wire_mtus).drain(max_packets, counters, packets)
        return packets

    def send_segment(
        self, segment: Segment, src: bytes, dst: bytes, tos: int = 0, ttl: int | None = None
    ) -> None:
        """Encode and send; ``src`` and ``dst`` are 4-byte IPv4 addresses, ``tos``
        the DS bits (the segment adds its ECN field), ``ttl`` None for the default."""
        self.send(encode(segment, src, dst), src, dst, tos | segment.ecn, ttl)

    def send(
        self,
        data: bytes | bytearray | memoryview,
        src: bytes,
        dst: bytes,
        tos: int = 0,
        ttl: int | None = None,
    ) -> None:
        """Send an already-encoded TCP segment.

        A full socket buffer (EAGAIN) drops the segment as a congested link would,
        counted as ``tx_dropped``; other send errors are counted as
        ``tx_error_<ERRNO>``.  TCP's retransmission recovers either way.
        """
        if len(dst) == 16:
            self._send6(data, src, dst, tos, ttl)
            return
        cmsg = self._pktinfo.get(src)
        if cmsg is None:
            cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("I4s4s", 0, src, bytes(4)))]
            self._pktinfo[src] = cmsg
        if tos:  # DS and ECN fields: per packet (ECN changes), so control messages
            cmsg = [*cmsg, (socket.IPPROTO_IP, socket.IP_TOS, struct.pack("i", tos))]
        if ttl is not None:
            cmsg = [*cmsg, (socket.IPPROTO_IP, socket.IP_TTL, struct.pack("i", ttl))]
        self._sendmsg(self._sock, data, cmsg, (socket.inet_ntoa(dst), 0), src, dst)

    def _send6(
        self,
        data: bytes | bytearray | memoryview,
        src: bytes,
        dst: bytes,
        tos: int,
        ttl: int | None,
    ) -> None:
        """IPv6: the source address, traffic class and hop limit as control messages
        (the kernel builds the header; the TCP checksum is ours, ``encode``'s)."""
        if self._sock6 is None:
            self.counters["tx_error_EAFNOSUPPORT"] += 1
            return
        cmsg = self._pktinfo.get(src)
        if cmsg is None:
            cmsg = [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, struct.pack("16sI", src, 0))]
            self._pktinfo[src] = cmsg
        if tos:
            cmsg = [*cmsg, (socket.IPPROTO_IPV6, socket.IPV6_TCLASS, struct.pack("i", tos))]
        if ttl is not None:
            cmsg = [*cmsg, (socket.IPPROTO_IPV6, socket.IPV6_HOPLIMIT, struct.pack("i", ttl))]
        address = (socket.inet_ntop(socket.AF_INET6, dst), 0, 0, 0)
        self._sendmsg(self._sock6, data, cmsg, address, src, dst)

    def _sendmsg(
        self,
        sock: _Socket,
        data: bytes | bytearray | memoryview,
        cmsg: list[tuple[int, int, bytes]],
        address: tuple[str, int] | tuple[str, int, int, int],
        src: bytes,
        dst: bytes,
    ) -> None:
        try:
            sock.sendmsg([data], cmsg, 0, address)
        except (BlockingIOError, InterruptedError):
            self.counters["tx_dropped"] += 1
            return
        except OSError as exc:
            # No route, an unreachable neighbour, a firewall DROP (EPERM), a full
            # queue (ENOBUFS): the network lost the segment; TCP's timers recover
            # or give up.  Never let one segment take the stack down.
            self.counters[f"tx_error_{errno.errorcode.get(exc.errno or 0, exc.errno)}"] += 1
            return
        self.counters["tx_packets"] += 1
        self.counters["tx_bytes"] += len(data)
        if self.pcap is not None:
            self.pcap.sent(src, dst, data)

    def close(self) -> None:
        for sock in (self._sock, *self._wire_socks, self._sock6):
            if sock is not None:
                sock.close()

    def __enter__(self) -> RawSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _configured(
    sock: _Socket,
    program: list[bpf.Insn],
    rcvbuf: int,
    sndbuf: int,
    ipv6_options: tuple[int, ...] = (),
) -> _Socket:
    """A raw socket made ready, or closed if it cannot be: its filter admitting
    nothing but ``program`` from the start (and non-blocking: ``attach_fresh``),
    buffers as large as allowed, ``ipv6_options`` (control messages to receive) on."""
    try:
        for option in ipv6_options:
            sock.setsockopt(socket.IPPROTO_IPV6, option, 1)
        bpf.attach_fresh(sock, program)
        for opt, size in ((socket.SO_RCVBUF, rcvbuf), (socket.SO_SNDBUF, sndbuf)):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, size)
    except BaseException:
        sock.close()
        raise
    return sock
