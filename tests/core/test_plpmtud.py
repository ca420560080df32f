"""Packetization-layer path MTU discovery (RFC 4821), as Linux's tcp_mtu_probing:
black-hole detection, then a binary search upwards with probe segments.

The simulated link plays a path whose MTU is smaller than both ends think and
that sends no "fragmentation needed": every larger packet silently disappears.
"""

from __future__ import annotations

import pytest

from aiotcp.core.options import TcpOptions
from aiotcp.core.plpmtud import PROBE_THRESHOLD
from aiotcp.core.segment import Segment, encode_options
from aiotcp.testing.corekit import L, Link, LinkProfile, connected_pair, established, opts

PATH_MTU = 1280
SIZE = 4 << 20


def ip_size(seg: Segment) -> int:
    return 20 + 20 + len(encode_options(seg)) + seg.payload_len


def black_hole(link: Link, mtu: int = PATH_MTU) -> None:
    """Packets from A larger than ``mtu`` vanish, and no ICMP says so."""
    link.drop_filter = lambda to_b, seg: to_b and ip_size(seg) > mtu


def transfer(**options: object) -> Link:
    options.setdefault("mtu_probing", 1)
    link = connected_pair(TcpOptions(nodelay=True, **options), TcpOptions(), LinkProfile())
    black_hole(link)
    link.write(False, bytes(SIZE))
    link.run_until(lambda: len(link.received[True]) == SIZE, timeout=120)
    return link


def test_a_black_hole_is_survived_and_the_path_mtu_found() -> None:
    link = transfer()
    a = link.a
    assert a.counters.mtu_black_holes == 1  # the base MSS got through at once
    assert a.counters.mtu_probes >= 3 and a.counters.mtu_probes_lost >= 1
    overhead = 20 + 20 + 12  # IP, TCP, timestamps
    assert PATH_MTU - overhead - PROBE_THRESHOLD <= a.mss <= PATH_MTU - overhead
    search = a.mtu_search
    assert search is not None and search.low <= PATH_MTU < search.high + PROBE_THRESHOLD


def test_without_mtu_probing_a_black_hole_stalls_the_connection() -> None:
    """The same path with Linux's default (tcp_mtu_probing = 0): full-size
    segments never arrive, so neither does the data after them."""
    with pytest.raises(AssertionError):
        transfer(mtu_probing=0)


def test_probing_from_the_base_mss_up_on_a_clean_path() -> None:
    """``mtu_probing=2`` (Linux's "always"): start at ``base_mss``, probe up to what
    the ends negotiated, within the search's threshold."""
    link = connected_pair(TcpOptions(nodelay=True, mtu_probing=2), TcpOptions(), LinkProfile())
    assert link.a.mss == 1024
    link.write(False, bytes(SIZE))
    link.run_until(lambda: len(link.received[True]) == SIZE, timeout=120)
    assert link.a.counters.mtu_probes_lost == 0
    assert 1448 - PROBE_THRESHOLD <= link.a.mss <= 1448


def test_a_probe_is_one_segment_larger_than_the_mss_and_alone_in_its_flush() -> None:
    t = established(opts(nodelay=True, mtu_probing=2), mss=1460)
    assert t.conn.mss == 1024
    t.conn.cc.cwnd = 20 * 1024
    t.send(bytes(20 * 1460))
    out = t.output()
    assert len(out) == 1
    probe = out[0]
    assert probe.gso_size == 0 and probe.payload_len == (1064 + 1500) // 2 - 40
    assert t.conn.mtu_search is not None and t.conn.mtu_search.probe_mtu
    t.recv("A", ack=L(1 + probe.payload_len))
    assert t.conn.mss == probe.payload_len  # acknowledged: the MSS grows to it


def test_icmp_lowers_the_top_of_the_search() -> None:
    t = established(opts(mtu_probing=2), mss=1460)
    assert t.conn.path_mtu_reduced(1200, seq=None) is False  # the MSS (1024) fits already
    search = t.conn.mtu_search
    assert search is not None and search.high == 1200


def test_each_further_timeout_halves_the_base() -> None:
    """Linux's tcp_mtu_probing: the first suspicion falls back to base_mss, each
    timeout after it halves the search's floor (not below 48 bytes)."""
    t = established(opts(nodelay=True, retries_r1=3, mtu_probing=1), mss=1460)
    t.conn.cc.cwnd = 20 * 1460
    t.send(bytes(8000))
    t.output()
    sizes = []
    for _ in range(6):
        t.advance(t.conn.rtt.rto + 0.001)
        sizes.append(t.conn.mss)
        t.output()
    assert sizes == [1460, 1460, 1024, 512, 256, 128]


def test_timeouts_after_the_smaller_size_got_through_are_loss_not_the_mtu() -> None:
    """Random loss can also time out R1 times in a row: once data sent at the
    fallback size is acknowledged, further timeouts leave the MSS alone (Linux
    would halve it again; on a 20 % loss path that halved it to nothing)."""
    t = established(opts(nodelay=True, retries_r1=3, mtu_probing=1), mss=1460)
    t.conn.cc.cwnd = 20 * 1460
    t.send(bytes(20000))
    t.output()
    for _ in range(3):
        t.advance(t.conn.rtt.rto + 0.001)
    assert t.conn.mss == 1024
    resent = t.output()
    t.recv("A", ack=L(1 + resent[0].payload_len))  # the 1024-byte segment arrived
    for _ in range(5):
        t.advance(t.conn.rtt.rto + 0.001)
        t.output()
    assert t.conn.mss == 1024 and t.conn.counters.mtu_black_holes == 1
