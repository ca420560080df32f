"""The bulk send path: TCP super-segments through AF_PACKET with a virtio-net header.

The raw IP socket has no GSO, so every MTU-sized segment costs a Python encode,
a checksum over its payload and a syscall: CPU-bound, far below what the kernel
takes (docs/performance.md).  With ``PACKET_VNET_HDR`` the kernel accepts one frame
of up to 64 KB carrying a run of consecutive segments, splits it into MSS-sized
segments (copying the header, advancing seq, keeping PSH/FIN for the last one) and
computes every checksum.

Header recipe (verified on Linux 6.x): virtio_net_hdr ``<BBHHHH`` with flags
NEEDS_CSUM, gso_type TCPV4 or TCPV6 (0 for a single segment), hdr_len, gso_size =
payload bytes per segment, csum_start = the TCP header's offset (34, or 54 after an
IPv6 header) and csum_offset = 16; the TCP checksum field holds the *non-inverted*
folded pseudo-header sum including the full TCP length (CHECKSUM_PARTIAL); the
IPv4 header is complete, with DF and the id advanced by the number of segments;
the IPv6 header has no checksum and no id, and its payload length covers the whole
super-segment (the kernel rewrites it per segment, as it does IPv4's total length).
Payload is passed as separate iovecs: never copied.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence
from typing import Final

from aiotcp.core.checksum import ones_sum, pseudo_header_sum
from aiotcp.core.segment import HEADER, Segment, encode_options
from aiotcp.io import route
from aiotcp.io.neighbour import NextHop
from aiotcp.io.pcap import PcapWriter

SOL_PACKET: Final = 263
PACKET_VNET_HDR: Final = 15
ETH_P_IP: Final = 0x0800
ETH_P_IPV6: Final = 0x86DD
VIRTIO_NET_HDR_F_NEEDS_CSUM: Final = 1
VIRTIO_NET_HDR_GSO_NONE: Final = 0
VIRTIO_NET_HDR_GSO_TCPV4: Final = 1
VIRTIO_NET_HDR_GSO_TCPV6: Final = 4
ETH_LEN: Final = 14
IP_LEN: Final = 20
IP6_LEN: Final = 40
MAX_IP_PACKET: Final = 65535

_VNET: Final = struct.Struct("<BBHHHH")
_IP: Final = struct.Struct("!BBHHHBBH4s4s")
_IP_TCP_TS: Final = struct.Struct("!BBHHHBBH4s4sHHIIBBHHHBBBBII")
"""IPv4 header, TCP header and NOP, NOP, timestamps: an established connection's
usual frame after the Ethernet header, packed in one call (the fast path)."""
_IP6: Final = struct.Struct("!IHBB16s16s")
_IP6_TCP_TS: Final = struct.Struct("!IHBB16s16sHHIIBBHHHBBBBII")
"""The same for IPv6: its header has no checksum, only the TCP seed is summed."""
_TS_HEADER_LEN: Final = 32


def _fold(total: int) -> int:
    """Fold a sum of 16-bit words into 16 bits, one's-complement style."""
    total = (total & 0xFFFF) + (total >> 16)
    return (total & 0xFFFF) + (total >> 16)


class GsoSender:
    """One AF_PACKET socket per interface, sending runs of segments as one frame."""

    def __init__(self, hop: NextHop) -> None:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: send only
        try:
            sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
            sock.bind((hop.ifname, 0))
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.hop = hop
        self._eth = hop.dst_mac + hop.src_mac + struct.pack("!H", ETH_P_IP)
        self._eth6 = hop.dst_mac + hop.src_mac + struct.pack("!H", ETH_P_IPV6)
        self._ip_id = 0
        # (src, dst) → sum of the address words: the part of both checksums that
        # is the same for every frame of a connection.
        self._address_sums: dict[tuple[bytes, bytes], int] = {}
        self._single_prefix = _single_vnet(IP_LEN) + self._eth
        self._single_prefix6 = _single_vnet(IP6_LEN) + self._eth6
        self.default_ttl = route.default_ttl()
        """The host's TTL (``ip_default_ttl``) for connections that set none."""
        self.default_hop_limit = route.default_hop_limit(hop.ifname)
        """The interface's IPv6 hop limit, the kernel's default for its own TCP."""
        self.pcap: PcapWriter | None = None
        self.frames = 0
        self.segments = 0
        self.errors = 0

    def send_run(
        self,
        run: Sequence[Segment],
        src: bytes,
        dst: bytes,
        tos: int = 0,
        ttl: int | None = None,
    ) -> int:
        """Send consecutive segments (same header fields, equal-size payloads but the
        last), or one super-segment, as one frame.  Returns how many wire segments
        that makes, or 0 when the kernel refused it (the caller falls back).
        ``tos``: the DS bits; ``ttl``: None for the host's default."""
        ip_id = self._ip_id
        first = run[0]
        tos |= first.ecn
        v6 = len(dst) == 16
        if ttl is not None:
            hops = ttl
        else:
            hops = self.default_hop_limit if v6 else self.default_ttl
        if len(run) == 1 and self.pcap is None and is_plain_timestamped(first):
            # The request/response case: one segment whose only option is the
            # timestamp, both headers from one ``struct`` call.
            key = (src, dst)
            addresses = self._address_sums.get(key)
            if addresses is None:
                if len(self._address_sums) > 1024:
                    self._address_sums.clear()
                addresses = address_sum(src, dst)
                self._address_sums[key] = addresses
            if v6:
                headers = timestamped_headers6(first, src, dst, addresses, tos, hops)
                return self._send([self._single_prefix6 + headers, *first.parts], 1)
            self._ip_id = (ip_id + 1) & 0xFFFF
            headers = timestamped_headers(first, src, dst, ip_id, addresses, tos, hops)
            return self._send([self._single_prefix + headers, *first.parts], 1)
        vnet, ip, tcp, n = frame_headers(run, src, dst, ip_id, tos, hops)
        if not v6:
            self._ip_id = (ip_id + n) & 0xFFFF
        if len(run) == 1:
            payloads = list(first.parts)  # a frame across two writes: two iovecs, no join
        else:
            payloads = [part for seg in run for part in seg.parts]
        eth = self._eth6 if v6 else self._eth
        sent = self._send([vnet + eth + ip + tcp, *payloads], n)
        if sent and self.pcap is not None:
            self.pcap.sent(src, dst, tcp, *payloads)
        return sent

    def _send(self, buffers: list[bytes | bytearray | memoryview], n: int) -> int:
        try:
            self.sock.sendmsg(buffers)
        except OSError:
            self.errors += 1
            return 0
        self.frames += 1
        self.segments += n
        return n

    def close(self) -> None:
        self.sock.close()


def _single_vnet(ip_len: int) -> bytes:
    """The virtio-net header of a one-segment frame with a timestamped TCP header."""
    return _VNET.pack(
        VIRTIO_NET_HDR_F_NEEDS_CSUM,
        VIRTIO_NET_HDR_GSO_NONE,
        ETH_LEN + ip_len + _TS_HEADER_LEN,
        0,
        ETH_LEN + ip_len,
        16,
    )


def is_plain_timestamped(seg: Segment) -> bool:
    """One wire segment whose only option is the timestamp: ``timestamped_headers``
    can build its frame."""
    return (
        seg.ts_val is not None
        and seg.mss is None
        and seg.wscale is None
        and not seg.sack_permitted
        and not seg.sack_blocks
        and seg.wire_segments == 1
    )


def address_sum(src: bytes, dst: bytes) -> int:
    """The 16-bit words of both addresses, summed: what the IPv4 header checksum and
    the TCP pseudo-header share, the same for every frame of a connection."""
    words = src + dst
    return sum((words[i] << 8) | words[i + 1] for i in range(0, len(words), 2))


def timestamped_headers(
    seg: Segment, src: bytes, dst: bytes, ip_id: int, addresses: int, tos: int, ttl: int
) -> bytes:
    """IPv4 and TCP headers (NOP, NOP, timestamps) for ``is_plain_timestamped``
    segments: the bytes ``frame_headers`` makes, with the checksums summed from
    the header fields (RFC 1071) instead of from packed bytes.  ``tos`` is the
    whole byte (DS and ECN)."""
    tcp_length = _TS_HEADER_LEN + seg.payload_len
    total = IP_LEN + tcp_length
    ip_csum = ~_fold(0x4500 + tos + total + ip_id + 0x4000 + (ttl << 8) + 6 + addresses) & 0xFFFF
    seed = _fold(addresses + 6 + tcp_length)  # uninverted: CHECKSUM_PARTIAL
    return _IP_TCP_TS.pack(
        0x45, tos, total, ip_id, 0x4000, ttl, 6, ip_csum, src, dst,
        seg.src_port, seg.dst_port, seg.seq, seg.ack, (_TS_HEADER_LEN // 4) << 4,
        seg.flags, seg.window, seed, seg.urgent,
        1, 1, 8, 10, seg.ts_val or 0, seg.ts_ecr or 0,
    )  # fmt: skip


def timestamped_headers6(
    seg: Segment, src: bytes, dst: bytes, addresses: int, tclass: int, hop_limit: int
) -> bytes:
    """``timestamped_headers`` for IPv6: the same TCP header after an IPv6 header
    (flow label 0).  The pseudo-header's sum differs from IPv4's only in how the
    length and next header are placed, and both fold to the same value."""
    tcp_length = _TS_HEADER_LEN + seg.payload_len
    seed = _fold(addresses + 6 + tcp_length)  # uninverted: CHECKSUM_PARTIAL
    return _IP6_TCP_TS.pack(
        0x60000000 | tclass << 20, tcp_length, 6, hop_limit, src, dst,
        seg.src_port, seg.dst_port, seg.seq, seg.ack, (_TS_HEADER_LEN // 4) << 4,
        seg.flags, seg.window, seed, seg.urgent,
        1, 1, 8, 10, seg.ts_val or 0, seg.ts_ecr or 0,
    )  # fmt: skip


def frame_headers(
    run: Sequence[Segment], src: bytes, dst: bytes, ip_id: int, tos: int, ttl: int
) -> tuple[bytes, bytearray, bytearray, int]:
    """The virtio-net header, IP header (IPv4, or IPv6 for 16-byte addresses) and
    TCP header (with options) of a run, and how many wire segments the kernel will
    cut from it.  ``tos`` is the whole byte (DS and ECN; IPv6's traffic class);
    ``ttl`` the TTL or hop limit; ``ip_id`` is IPv4's alone."""
    first = run[0]
    opts = encode_options(first)
    tcp_len_hdr = 20 + len(opts)
    if len(run) == 1:
        total = first.payload_len
        gso_size = first.gso_size or total
        n = first.wire_segments
    else:
        total = sum(seg.payload_len for seg in run)
        gso_size = first.payload_len
        n = len(run)
    last = run[-1]
    tcp = bytearray(tcp_len_hdr)
    HEADER.pack_into(
        tcp, 0, first.src_port, first.dst_port, first.seq, first.ack,
        (tcp_len_hdr // 4) << 4, last.flags, first.window, 0, first.urgent,
    )  # fmt: skip
    tcp[20:] = opts
    seed = pseudo_header_sum(src, dst, tcp_len_hdr + total)
    tcp[16], tcp[17] = seed >> 8, seed & 0xFF
    if len(dst) == 16:
        ip = bytearray(_IP6.pack(0x60000000 | tos << 20, tcp_len_hdr + total, 6, ttl, src, dst))
        ip_len, gso_type = IP6_LEN, VIRTIO_NET_HDR_GSO_TCPV6
    else:
        ip = bytearray(
            _IP.pack(0x45, tos, IP_LEN + tcp_len_hdr + total, ip_id, 0x4000, ttl, 6, 0, src, dst)
        )
        csum = ~ones_sum(ip) & 0xFFFF
        ip[10], ip[11] = csum >> 8, csum & 0xFF
        ip_len, gso_type = IP_LEN, VIRTIO_NET_HDR_GSO_TCPV4
    gso = n > 1
    vnet = _VNET.pack(
        VIRTIO_NET_HDR_F_NEEDS_CSUM,
        gso_type if gso else VIRTIO_NET_HDR_GSO_NONE,
        ETH_LEN + ip_len + tcp_len_hdr,
        gso_size if gso else 0,
        ETH_LEN + ip_len,
        16,
    )
    return vnet, ip, tcp, n


def runs(segments: Sequence[Segment], limit: int) -> list[list[Segment]]:
    """Group segments that the kernel can produce from one super-segment.

    A run: consecutive sequence numbers, identical header fields but PSH/FIN (only
    the last may carry them), equal payload sizes but the last (which may be
    smaller), no SYN/RST/URG, at most ``limit`` payload bytes.  A super-segment
    (``gso_size``) is a run by itself.
    """
    out: list[list[Segment]] = []
    cur: list[Segment] = []
    size = 0
    for seg in segments:
        n = seg.payload_len
        if cur:
            head, prev = cur[0], cur[-1]
            if (
                n
                and not seg.gso_size
                and not head.gso_size
                and not prev.flags & 0x09  # PSH/FIN only on the last of a run
                and (seg.flags | 0x09) == (head.flags | 0x09)
                and not seg.flags & 0x26  # SYN, RST, URG travel alone
                and seg.seq == (prev.seq + prev.payload_len) & 0xFFFFFFFF
                and prev.payload_len == head.payload_len
                and n <= head.payload_len
                and seg.ack == head.ack
                and seg.window == head.window
                and seg.ts_val == head.ts_val
                and seg.ts_ecr == head.ts_ecr
                and seg.ecn == head.ecn
                and not seg.sack_blocks
                and not head.sack_blocks
                and size + n <= limit
            ):
                cur.append(seg)
                size += n
                continue
            out.append(cur)
        cur, size = [seg], n
    if cur:
        out.append(cur)
    return out
