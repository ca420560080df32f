"""ICMP errors handed to a connection (RFC 9293 §3.9.2.2, RFC 5927, RFC 1191),
with Linux's ``tcp_v4_err`` as the reference for what each state does."""

from __future__ import annotations

import errno

import pytest

from aiotcp.core.events import CloseReason
from aiotcp.core.state import State
from aiotcp.testing.corekit import L, established, opts, syn_received, syn_sent


def test_port_unreachable_refuses_connection_attempt() -> None:
    t = syn_sent()
    assert t.conn.icmp_error(errno.ECONNREFUSED, hard=True, seq=L(0))
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.REFUSED
    exc = t.conn.close_exception()
    assert isinstance(exc, ConnectionRefusedError) and exc.errno == errno.ECONNREFUSED


@pytest.mark.parametrize("err", [errno.ENETUNREACH, errno.EHOSTUNREACH])
def test_soft_errors_also_end_a_connection_attempt(err: int) -> None:
    """Linux ends a ``connect`` on any ICMP error about its SYN (RFC 5461 §4.1):
    waiting out every SYN retry for an unreachable network helps nobody."""
    t = syn_sent()
    t.conn.icmp_error(err, hard=False, seq=L(0))
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.UNREACHABLE
    exc = t.conn.close_exception()
    assert exc is not None and exc.errno == err


def test_hard_error_on_established_connection_is_only_recorded() -> None:
    """RFC 1122 §4.2.3.9 / RFC 5461: once synchronized, every error is soft."""
    t = established()
    assert t.conn.icmp_error(errno.ECONNREFUSED, hard=True, seq=None)
    assert t.state is State.ESTABLISHED
    assert t.conn.soft_error == errno.ECONNREFUSED
    assert t.conn.info(t.now).soft_error == errno.ECONNREFUSED
    assert t.conn.counters.icmp_soft_errors == 1


def test_half_open_passive_connection_goes_only_on_a_hard_error() -> None:
    """Linux's ``tcp_req_err``: a soft error leaves the SYN-ACK retries to decide."""
    t = syn_received()
    assert t.conn.icmp_error(errno.EHOSTUNREACH, hard=False, seq=L(0))
    assert t.state is State.SYN_RECEIVED
    t.conn.icmp_error(errno.EHOSTUNREACH, hard=True, seq=L(0))
    assert t.state is State.CLOSED


def test_icmp_quoting_unknown_sequence_is_ignored() -> None:
    """RFC 5927 §4.1: blind ICMP attacks quote sequence numbers we never sent."""
    t = syn_sent()
    assert not t.conn.icmp_error(errno.ECONNREFUSED, hard=True, seq=L(1000))
    assert t.state is State.SYN_SENT
    e = established()
    e.send(b"x" * 100)
    e.output()
    assert not e.conn.icmp_error(errno.EHOSTUNREACH, hard=False, seq=L(500))
    assert not e.conn.path_mtu_reduced(600, seq=L(500))
    assert e.conn.soft_error is None and e.conn.mss == 1460


def test_timeout_after_soft_errors_reports_the_last_one() -> None:
    """Linux's ``tcp_write_err``: ``sk_err_soft`` if set, else ETIMEDOUT."""
    t = established(opts(retries=2, nodelay=True))
    t.send(b"lost")
    t.output()
    t.conn.icmp_error(errno.EHOSTUNREACH, hard=False, seq=L(1))
    for _ in range(10):
        t.advance(120.0)
        if t.state is State.CLOSED:
            break
    assert t.conn.close_reason is CloseReason.TIMEOUT
    exc = t.conn.close_exception()
    assert exc is not None and exc.errno == errno.EHOSTUNREACH


def test_timeout_without_icmp_is_etimedout() -> None:
    t = established(opts(retries=2, nodelay=True))
    t.send(b"lost")
    t.output()
    for _ in range(10):
        t.advance(120.0)
    exc = t.conn.close_exception()
    assert isinstance(exc, TimeoutError) and exc.errno == errno.ETIMEDOUT


def test_fragmentation_needed_lowers_mss_and_resends() -> None:
    t = established(opts(nodelay=True), mss=1460)
    t.send(b"p" * 2920)
    assert [len(s.payload) for s in t.output()] == [1460, 1460]
    cwnd = t.conn.cc.cwnd
    assert t.conn.path_mtu_reduced(1280, seq=L(1))
    assert t.conn.mss == 1240
    sizes = [len(s.payload) for s in t.output()]
    assert sizes[0] == 1240 and sum(sizes) == 2920
    assert t.conn.counters.pmtu_reductions == 1
    # Not congestion: the window in bytes is not cut (cwnd counts segments of
    # the new size at most as many bytes as before).
    assert t.conn.cc.cwnd >= cwnd * 1240 // 1460


def test_fragmentation_needed_never_raises_mss() -> None:
    t = established(mss=1000)
    assert not t.conn.path_mtu_reduced(9000, seq=None)
    assert t.conn.mss == 1000


def test_path_mtu_counts_the_timestamp_option() -> None:
    """The MTU bounds the whole IP packet: 20 + 20 header bytes, plus 12 of
    timestamps when they are on (RFC 7323)."""
    t = established(opts(timestamps=True), mss=1460, ts_val=1, ts_ecr=0)
    assert t.conn.ts_ok
    t.conn.path_mtu_reduced(1000, seq=None)
    assert t.conn.mss == 1000 - 40 - 12
