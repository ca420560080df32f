"""IPv6 + TCP parsing and the IPv6 pseudo-header checksum, against scapy's packets."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
from scapy.utils import rdpcap

from aiotcp.core.checksum import CSUM_OK, pseudo_header_sum, verify
from aiotcp.core.segment import DropReason, Segment, decode, encode
from aiotcp.io import bpf
from aiotcp.io.packet import Packet, format_ip, parse_ipv6_tcp
from aiotcp.io.pcap import PcapWriter

A, B = "fd00:aa::1", "fd00:aa::2"
A6, B6 = socket.inet_pton(socket.AF_INET6, A), socket.inet_pton(socket.AF_INET6, B)


def packet(**tcp: object) -> bytes:
    fields = {"sport": 40000, "dport": 8080, "seq": 7, "ack": 9, "flags": "PA", **tcp}
    return bytes(IPv6(src=B, dst=A, tc=0x02) / TCP(**fields) / b"hello")  # tc: ECT(0)


def test_a_segment_parses_with_addresses_ecn_and_checksum() -> None:
    parsed = parse_ipv6_tcp(memoryview(packet()))
    assert isinstance(parsed, Packet)
    assert (parsed.src, parsed.dst) == (B6, A6)
    seg = parsed.segment
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack, bytes(seg.payload)) == (
        40000, 8080, 7, 9, b"hello",
    )  # fmt: skip
    assert seg.ecn == 2
    assert format_ip(parsed.src) == B


def test_encode_makes_the_checksum_scapy_makes() -> None:
    seg = Segment(8080, 40000, 100, 200, 0x18, 500, 0, b"payload")
    ours = encode(seg, A6, B6)
    theirs = bytes(TCP(bytes(IPv6(src=A, dst=B) / TCP(ours))[40:]))
    assert ours == theirs  # scapy rebuilt it with its own checksum: the same bytes
    assert verify(A6, B6, ours) == CSUM_OK
    assert isinstance(decode(ours, A6, B6), Segment)


def test_the_pseudo_header_is_ipv6s() -> None:
    """RFC 8200 §8.1: addresses, a 32-bit length, three zero bytes, next header."""
    words = A6 + B6 + (1000).to_bytes(4, "big") + bytes(3) + b"\x06"
    total = sum(int.from_bytes(words[i : i + 2], "big") for i in range(0, len(words), 2))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    assert pseudo_header_sum(A6, B6, 1000) == total


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (packet()[:30], DropReason.TRUNCATED_IP),
        (b"\x45" + packet()[1:], DropReason.BAD_IP_VERSION),
        (packet()[:-2], DropReason.BAD_IP_TOTAL_LENGTH),
        (
            bytes(IPv6(src=B, dst=A) / IPv6ExtHdrFragment() / TCP()),
            DropReason.IPV6_EXTENSION_HEADER,
        ),
        (bytes(IPv6(src=B, dst=A, nh=17) / (b"x" * 8)), DropReason.NOT_TCP),
        (bytes(IPv6(src="ff02::1", dst=A) / TCP(sport=1, dport=2)), DropReason.BAD_ADDRESS),
        (bytes(IPv6(src="::", dst=A) / TCP(sport=1, dport=2)), DropReason.BAD_ADDRESS),
        (bytes(IPv6(src=B, dst=A) / TCP(sport=0, dport=2)), DropReason.BAD_PORT),
    ],
)
def test_bad_packets_come_back_as_drop_reasons(data: bytes, reason: DropReason) -> None:
    assert parse_ipv6_tcp(memoryview(data)) == reason


def test_a_corrupted_segment_fails_its_checksum() -> None:
    data = bytearray(packet())
    data[-1] ^= 1
    assert parse_ipv6_tcp(memoryview(data)) == DropReason.BAD_CHECKSUM


def test_the_raw_socket_filter_admits_our_ports_addressed_to_us() -> None:
    """The raw IPv6 socket's data starts at the TCP header (the kernel has taken
    the IPv6 header and any extension headers off)."""
    prog = bpf.tcp6_dst_port_filter([(8080, 8080), (40000, 40999)])
    assert bpf.run(prog, bytes(TCP(sport=1234, dport=8080))) != 0
    assert bpf.run(prog, bytes(TCP(sport=1234, dport=40500))) != 0
    assert bpf.run(prog, bytes(TCP(sport=8080, dport=9090))) == 0
    assert bpf.run(prog, bytes(TCP(dport=8080)), pkttype=1) == 0  # a broadcast/multicast frame
    assert bpf.run(prog, bytes(TCP(dport=8080))[:3]) == 0  # too short to hold a port


def test_a_capture_records_ipv6_segments_with_an_ipv6_header(tmp_path: Path) -> None:
    """pcap's raw-IP link type takes both versions: what is sent over IPv6 is
    written with an IPv6 header that Wireshark (here scapy) reads back."""
    path = tmp_path / "six.pcap"
    seg = Segment(8080, 40000, 100, 200, 0x18, 500, 0, b"payload")
    writer = PcapWriter(str(path))
    writer.sent(A6, B6, encode(seg, A6, B6))
    writer.close()
    (pkt,) = rdpcap(str(path))
    assert pkt[IPv6].src == A and pkt[IPv6].dst == B and pkt[IPv6].nh == 6
    assert pkt[TCP].sport == 8080 and bytes(pkt[TCP].payload) == b"payload"
