"""The ICMPv6 error filter and parser (``aiotcp.io.icmp``), on messages scapy builds.

A raw ICMPv6 socket delivers a message from its ICMPv6 header on, so each packet
is built whole (scapy computes the checksum over the pseudo-header) and cut
after its IPv6 header.  The filter runs in ``bpf.run`` as in the kernel; the last
test checks against the kernel itself that those offsets are the right ones.
"""

from __future__ import annotations

import collections
import errno
import socket
import struct
import time

import pytest
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoRequest,
    ICMPv6ND_NS,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
)
from scapy.packet import Packet

from aiotcp.io import bpf
from aiotcp.io.icmp import (
    ICMP6_ERRORS,
    MIN_MTU_V6,
    Icmp6Socket,
    IcmpError,
    icmp6_type_filter,
    open_icmp6_socket,
    parse_icmp6_error,
)
from aiotcp.testing.netns import Host

OURS = [(40000, 40999), (8080, 8080)]
US, PEER, ROUTER = "fd00:198:18::1", "fd00:198:18:1::2", "fd00:198:18::2"


def addr(text: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, text)


def message(
    icmp: Packet, *, sport: int = 40001, quote: int = 1232, inner: Packet | None = None
) -> bytes:
    """An ICMPv6 error from the router quoting our segment US:sport → PEER:80 (cut to
    ``quote`` bytes), as the raw socket hands it over: without the IPv6 header."""
    quoted = (
        inner
        if inner is not None
        else IPv6(src=US, dst=PEER) / TCP(sport=sport, dport=80, seq=123456789, flags="A")
    )
    return bytes(IPv6(src=ROUTER, dst=US) / icmp / bytes(quoted)[:quote])[40:]


def admitted(packet: bytes) -> bool:
    return bpf.run(bpf.icmp6_error_filter(OURS), packet) != 0


def expected(err: int, hard: bool, mtu: int | None = None) -> IcmpError:
    return IcmpError(
        local=(addr(US), 40001),
        remote=(addr(PEER), 80),
        seq=123456789,
        errno=err,
        hard=hard,
        mtu=mtu,
        reporter=addr(ROUTER),
    )


@pytest.mark.parametrize(
    ("icmp", "err", "hard"),
    [  # icmpv6_err_convert (net/ipv6/icmp.c)
        (ICMPv6DestUnreach(code=0), errno.ENETUNREACH, False),
        (ICMPv6DestUnreach(code=1), errno.EACCES, True),
        (ICMPv6DestUnreach(code=2), errno.EHOSTUNREACH, False),
        (ICMPv6DestUnreach(code=3), errno.EHOSTUNREACH, False),
        (ICMPv6DestUnreach(code=4), errno.ECONNREFUSED, True),
        (ICMPv6DestUnreach(code=5), errno.EACCES, True),
        (ICMPv6DestUnreach(code=6), errno.EACCES, True),
        (ICMPv6DestUnreach(code=99), errno.EPROTO, True),  # unknown: Linux's default
        (ICMPv6TimeExceeded(code=0), errno.EHOSTUNREACH, False),
        (ICMPv6ParamProblem(code=0, ptr=6), errno.EPROTO, True),
    ],
)
def test_errors_about_our_segments_are_admitted_and_named(
    icmp: Packet, err: int, hard: bool
) -> None:
    packet = message(icmp)
    assert admitted(packet)
    assert parse_icmp6_error(packet, addr(ROUTER)) == expected(err, hard)


@pytest.mark.parametrize("mtu", [MIN_MTU_V6, 1400, 1499, 70000])
def test_packet_too_big_carries_its_mtu(mtu: int) -> None:
    """RFC 8201: the 32-bit MTU as sent; the core ignores one that is not smaller."""
    packet = message(ICMPv6PacketTooBig(mtu=mtu))
    assert admitted(packet)
    assert parse_icmp6_error(packet, addr(ROUTER)) == expected(errno.EMSGSIZE, False, mtu)


@pytest.mark.parametrize("mtu", [0, 576, MIN_MTU_V6 - 1])
def test_packet_too_big_below_the_ipv6_minimum_is_discarded(mtu: int) -> None:
    """RFC 8201 §4 (and ``tcp_v6_err``): a node MUST NOT lower its path MTU under
    1280 for a Packet Too Big, and discards one that reports less."""
    packet = message(ICMPv6PacketTooBig(mtu=mtu))
    assert parse_icmp6_error(packet, addr(ROUTER)) == "icmp6_mtu_below_minimum"


def test_the_minimum_quote_is_enough() -> None:
    """The quoted IPv6 header and TCP's first 8 bytes: ports and sequence number."""
    packet = message(ICMPv6DestUnreach(code=4), quote=48)
    assert admitted(packet)
    assert parse_icmp6_error(packet, addr(ROUTER)) == expected(errno.ECONNREFUSED, True)


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(message(ICMPv6EchoRequest()), id="echo"),
        pytest.param(bytes(IPv6(src=ROUTER, dst=US) / ICMPv6ND_NS(tgt=US))[40:], id="ndp"),
        pytest.param(message(ICMPv6DestUnreach(code=3), sport=12345), id="not-our-port"),
        pytest.param(message(ICMPv6DestUnreach(code=3), quote=46), id="sequence-cut-off"),
        pytest.param(
            message(ICMPv6DestUnreach(code=4), inner=IPv6(src=US, dst=PEER) / UDP(sport=40001)),
            id="quotes-udp",
        ),
        pytest.param(
            message(
                ICMPv6DestUnreach(code=4),
                inner=IPv6(src=US, dst=PEER) / IPv6ExtHdrDestOpt() / TCP(sport=40001),
            ),
            id="quotes-an-extension-header",
        ),
        pytest.param(message(ICMPv6DestUnreach(code=3))[:30], id="truncated"),
    ],
)
def test_everything_else_stays_in_the_kernel(packet: bytes) -> None:
    assert not admitted(packet)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (message(ICMPv6DestUnreach(code=3), quote=46), "icmp6_malformed"),
        (
            message(
                ICMPv6DestUnreach(code=4),
                inner=IPv6(src=US, dst=PEER) / IPv6ExtHdrDestOpt() / TCP(sport=40001),
            ),
            "icmp6_malformed",
        ),
        (b"\x01\x00" + bytes(54), "icmp6_malformed"),  # quotes no IPv6 header
        (b"\x05" + message(ICMPv6DestUnreach())[1:], "icmp6_ignored_type"),  # no such error
        (b"", "icmp6_malformed"),
    ],
)
def test_the_parser_drops_what_the_filter_would_and_says_why(packet: bytes, reason: str) -> None:
    assert parse_icmp6_error(packet, addr(ROUTER)) == reason


def test_the_type_filter_passes_the_four_errors_only() -> None:
    """``struct icmp6_filter``: a set bit blocks its type (RFC 3542 §3.2)."""
    words = struct.unpack("=8I", icmp6_type_filter(ICMP6_ERRORS))
    passed = [t for t in range(256) if not words[t >> 5] >> (t & 31) & 1]
    assert passed == [1, 2, 3, 4]


def test_the_kernel_hands_over_what_the_parser_expects(hosts6: tuple[Host, Host]) -> None:
    """On a real socket: the filter's offsets hold (the message starts at the ICMPv6
    header), the kernel drops a message with a bad checksum, and only errors that
    quote one of our segments reach ``recv_errors``."""
    a, b = hosts6
    assert a.address6 is not None and b.address6 is not None
    counters: collections.Counter[str] = collections.Counter()
    sock = a.call(Icmp6Socket, OURS, counters)
    ours = IPv6(src=a.address6, dst=PEER) / TCP(sport=40001, dport=80, seq=7, flags="A")
    to_a = IPv6(src=b.address6, dst=a.address6)
    bad = bytearray(bytes(to_a / ICMPv6DestUnreach(code=4) / bytes(ours)))
    bad[-1] ^= 0xFF  # the checksum no longer holds
    packets = [
        bytes(to_a / ICMPv6DestUnreach(code=4) / bytes(ours)),
        bytes(to_a / ICMPv6PacketTooBig(mtu=1400) / bytes(ours)),
        bytes(bad),
        bytes(to_a / ICMPv6EchoRequest()),
        bytes(to_a / ICMPv6DestUnreach(code=4) / bytes(IPv6(src=a.address6) / TCP(sport=12345))),
    ]

    def send() -> None:
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW) as raw:
            for packet in packets:
                raw.sendto(packet, (a.address6, 0))

    try:
        b.call(send)
        got: list[IcmpError] = []
        deadline = time.monotonic() + 2
        while len(got) < 2 and time.monotonic() < deadline:
            got += sock.recv_errors()
            time.sleep(0.01)
        time.sleep(0.1)
        got += sock.recv_errors()
    finally:
        sock.close()
    assert [(e.errno, e.mtu, e.seq, e.local[1], e.reporter) for e in got] == [
        (errno.ECONNREFUSED, None, 7, 40001, addr(b.address6)),
        (errno.EMSGSIZE, 1400, 7, 40001, addr(b.address6)),
    ]
    assert counters["icmp6_received"] == 2


def test_a_kernel_without_ipv6_gets_no_icmp6_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ipv6.disable=1``: the socket cannot exist, and the stack must still start."""

    def no_ipv6(family: int, proto: int, what: str) -> socket.socket:
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    monkeypatch.setattr("aiotcp.io.icmp.raw_socket", no_ipv6)
    assert open_icmp6_socket(OURS, collections.Counter()) is None
