"""ICMP errors handed to a connection (RFC 9293 §3.9.2.2, RFC 5927, RFC 1191)."""

from __future__ import annotations

from aiotcp.core.events import CloseReason
from aiotcp.core.state import State
from aiotcp.testing.corekit import L, established, opts, syn_sent


def test_port_unreachable_refuses_connection_attempt() -> None:
    t = syn_sent()
    t.conn.icmp_unreachable(3, seq=L(0))
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.REFUSED


def test_hard_error_on_established_connection_is_only_recorded() -> None:
    """RFC 5461: hard errors are soft once synchronized."""
    t = established()
    t.conn.icmp_unreachable(3)
    assert t.state is State.ESTABLISHED
    assert t.conn.soft_error == 3


def test_net_unreachable_is_soft_during_handshake() -> None:
    t = syn_sent()
    t.conn.icmp_unreachable(0, seq=L(0))
    assert t.state is State.SYN_SENT and t.conn.soft_error == 0


def test_icmp_quoting_unknown_sequence_is_ignored() -> None:
    """RFC 5927 §4.1: blind ICMP attacks quote sequence numbers we never sent."""
    t = syn_sent()
    t.conn.icmp_unreachable(3, seq=L(1000))
    assert t.state is State.SYN_SENT


def test_fragmentation_needed_lowers_mss_and_resends() -> None:
    t = established(opts(nodelay=True), mss=1460)
    t.send(b"p" * 2920)
    assert [len(s.payload) for s in t.output()] == [1460, 1460]
    t.conn.icmp_unreachable(4, seq=L(1), next_hop_mtu=1280)
    assert t.conn.mss == 1240
    sizes = [len(s.payload) for s in t.output()]
    assert sizes[0] == 1240 and sum(sizes) == 2920


def test_fragmentation_needed_never_raises_mss() -> None:
    t = established(mss=1000)
    t.conn.icmp_unreachable(4, next_hop_mtu=9000)
    assert t.conn.mss == 1000
