"""ECN (RFC 3168, ``ecn=True``) against the Linux kernel.

The impairment helper plays an AQM router: it marks ECN-capable packets
Congestion Experienced instead of dropping them.  The kernel's default
``tcp_ecn=2`` accepts ECN when a client asks, so aiotcp is the client throughout;
the kernel's own counters show it saw (as a sender) aiotcp's echoes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiotcp.testing.impair import impair
from aiotcp.testing.loops import run
from aiotcp.testing.netns import (
    Host,
    kernel_sink,
    kernel_source,
    pattern,
    require_root,
    sysctl,
    two_hosts,
)
from aiotcp.testing.transfer import receive_bulk, send_bulk

pytestmark = pytest.mark.root

PORT = 7000
SIZE = 2_000_000


@pytest.fixture
def wire(family: str) -> Iterator[tuple[Host, Host]]:
    """Offloads off: the helper sees (and marks) wire segments, not super-packets.
    With IPv6 addresses too when ``family`` is IPv6."""
    require_root()
    with two_hosts("ecn", offload=False, ipv6=family == "ipv6") as pair:
        yield pair


def delivered_ce(host: Host) -> int:
    """Linux ``TCPDeliveredCE``: segments a sender learned were CE-marked (via ECE)."""
    return host.call(lambda: _netstat("TcpExt", "TCPDeliveredCE"))


def _netstat(proto: str, key: str) -> int:
    lines = Path("/proc/thread-self/net/netstat").read_text().splitlines()
    for head, body in zip(lines[::2], lines[1::2], strict=True):
        keys, values = head.split(), body.split()
        if keys[0] == f"{proto}:" and key in keys:
            return int(values[keys.index(key)])
    return 0


def test_marks_on_aiotcp_data_reduce_its_window_without_retransmitting(
    wire: tuple[Host, Host], family: str
) -> None:
    a, b = wire
    data = pattern(SIZE, seed=31)
    peer = b.address_of(family)
    with (
        kernel_sink(b, PORT) as sink,
        impair(b, ce=0.02, seed=5, proto="tcp") as imp,
        a.entered(),
    ):
        result = run(lambda: send_bulk(peer, PORT, data, ecn=True), timeout=60)
        assert sink.read_result() == (SIZE, hashlib.sha256(data).hexdigest())
    assert imp.stats.ce_marked > 0
    assert result.info.options["ecn"] is True
    assert result.counters["ecn_reductions"] > 0
    assert result.counters["retransmits"] == 0


def test_marks_on_kernel_data_are_echoed_to_the_kernel(
    wire: tuple[Host, Host], family: str
) -> None:
    a, b = wire
    before = delivered_ce(b)
    peer = b.address_of(family)
    with (
        kernel_source(b, PORT, SIZE),
        impair(a, ce=0.02, seed=6, proto="tcp") as imp,
        a.entered(),
    ):
        result = run(lambda: receive_bulk(peer, PORT, ecn=True), timeout=60)
    assert result.nbytes == SIZE
    assert result.sha256 == hashlib.sha256(pattern(SIZE)).hexdigest()
    assert imp.stats.ce_marked > 0
    assert 0 < result.counters["ce_received"] <= imp.stats.ce_marked
    assert delivered_ce(b) > before  # the kernel sender saw our ECE


def test_kernel_without_ecn_falls_back_to_plain_tcp(wire: tuple[Host, Host], family: str) -> None:
    a, b = wire
    sysctl(b, "net.ipv4.tcp_ecn", "0")  # TCP's, over IPv6 too
    data = pattern(100_000, seed=32)
    peer = b.address_of(family)
    with kernel_sink(b, PORT) as sink, a.entered():
        result = run(lambda: send_bulk(peer, PORT, data, ecn=True), timeout=30)
        assert sink.read_result() == (len(data), hashlib.sha256(data).hexdigest())
    assert result.info.options["ecn"] is False
