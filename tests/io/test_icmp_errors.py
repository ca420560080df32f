"""The ICMP error filter and parser (``aiotcp.io.icmp``), on packets scapy builds.

The filter runs in the kernel; here the same program runs in ``bpf.run``, the
interpreter the raw socket's filter tests use, so what it admits can be checked
without root.
"""

from __future__ import annotations

import errno

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP

from aiotcp.io import bpf
from aiotcp.io.icmp import MIN_PMTU_V4, IcmpError, parse_icmp_error

OURS = [(40000, 40999), (8080, 8080)]
US, PEER, ROUTER = "198.18.0.1", "198.18.1.2", "198.18.0.2"


def error(icmp: ICMP, *, sport: int = 40001, quote: int = 28, quoted_ip: IP | None = None) -> bytes:
    """An ICMP error from the router quoting our segment US:sport → PEER:80, cut to
    ``quote`` bytes (RFC 792's minimum is the IP header and 8 bytes)."""
    inner = (quoted_ip or IP(src=US, dst=PEER, flags="DF")) / TCP(
        sport=sport, dport=80, seq=123456789, flags="A"
    )
    return bytes(IP(src=ROUTER, dst=US) / icmp / bytes(inner)[:quote])


def admitted(packet: bytes) -> bool:
    return bpf.run(bpf.icmp_error_filter(OURS), packet) != 0


@pytest.mark.parametrize(
    ("icmp", "err", "hard"),
    [
        (ICMP(type=3, code=0), errno.ENETUNREACH, False),
        (ICMP(type=3, code=1), errno.EHOSTUNREACH, False),
        (ICMP(type=3, code=3), errno.ECONNREFUSED, True),
        (ICMP(type=3, code=13), errno.EHOSTUNREACH, True),
        (ICMP(type=11, code=0), errno.EHOSTUNREACH, False),
        (ICMP(type=12, code=0), errno.EPROTO, False),
    ],
)
def test_errors_about_our_segments_are_admitted_and_named(icmp: ICMP, err: int, hard: bool) -> None:
    packet = error(icmp)
    assert admitted(packet)
    assert parse_icmp_error(packet) == IcmpError(
        local=(bytes([198, 18, 0, 1]), 40001),
        remote=(bytes([198, 18, 1, 2]), 80),
        seq=123456789,
        errno=err,
        hard=hard,
        mtu=None,
        reporter=bytes([198, 18, 0, 2]),
    )


@pytest.mark.parametrize(("mtu", "expected"), [(1280, 1280), (300, MIN_PMTU_V4), (0, MIN_PMTU_V4)])
def test_fragmentation_needed_carries_the_mtu_clamped_as_linux_does(
    mtu: int, expected: int
) -> None:
    parsed = parse_icmp_error(error(ICMP(type=3, code=4, nexthopmtu=mtu)))
    assert isinstance(parsed, IcmpError) and parsed.mtu == expected


def test_options_in_either_ip_header_are_followed() -> None:
    quoted = IP(src=US, dst=PEER, options=[IPOption_NOP()] * 4)
    packet = bytes(
        IP(src=ROUTER, dst=US, options=[IPOption_NOP()] * 8)
        / ICMP(type=3, code=1)
        / bytes(quoted / TCP(sport=8080, dport=80, seq=7))[:32]
    )
    assert admitted(packet)
    parsed = parse_icmp_error(packet)
    assert isinstance(parsed, IcmpError) and parsed.local[1] == 8080 and parsed.seq == 7


@pytest.mark.parametrize(
    "packet",
    [
        pytest.param(bytes(IP(src=ROUTER, dst=US) / ICMP(type=8) / (b"ping" * 10)), id="echo"),
        pytest.param(error(ICMP(type=4, code=0)), id="source-quench"),
        pytest.param(error(ICMP(type=5, code=1)), id="redirect"),
        pytest.param(error(ICMP(type=3, code=1), sport=12345), id="not-our-port"),
        pytest.param(error(ICMP(type=3, code=1), quote=24), id="sequence-cut-off"),
        pytest.param(
            bytes(
                IP(src=ROUTER, dst=US)
                / ICMP(type=3, code=3)
                / IP(src=US, dst=PEER)
                / UDP(sport=40001)
            ),
            id="quotes-udp",
        ),
        pytest.param(bytes(IP(src=ROUTER, dst=US) / ICMP(type=3, code=1))[:30], id="truncated"),
    ],
)
def test_everything_else_stays_in_the_kernel(packet: bytes) -> None:
    assert not admitted(packet)


@pytest.mark.parametrize(
    ("packet", "reason"),
    [
        (error(ICMP(type=4, code=0)), "icmp_ignored_type"),  # RFC 9293 MUST-55
        (error(ICMP(type=3, code=1), quote=24), "icmp_malformed"),
        (b"\x45" + bytes(30), "icmp_malformed"),
        (b"", "icmp_malformed"),
    ],
)
def test_the_parser_drops_what_the_filter_would_and_says_why(packet: bytes, reason: str) -> None:
    assert parse_icmp_error(packet) == reason


def test_a_corrupted_error_fails_its_checksum() -> None:
    packet = bytearray(error(ICMP(type=3, code=3)))
    packet[-1] ^= 0xFF
    assert parse_icmp_error(packet) == "icmp_bad_checksum"


def test_unknown_unreachable_codes_are_dropped() -> None:
    assert parse_icmp_error(error(ICMP(type=3, code=42))) == "icmp_unknown_code"
