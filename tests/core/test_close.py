"""Closing: RFC 9293 §3.6 (all orders), §3.10.4, TIME-WAIT and RFC 1337."""

from __future__ import annotations

import pytest

from aiotcp.core.events import CloseReason, ConnectionClosed, EofReceived
from aiotcp.core.state import State
from aiotcp.core.timers import TimerName
from aiotcp.testing.corekit import (
    L,
    R,
    close_wait,
    closing,
    established,
    fin_wait_1,
    fin_wait_2,
    last_ack,
    opts,
    syn_received,
    syn_sent,
    time_wait,
)


def test_close_sends_fin_and_enters_fin_wait_1() -> None:
    t = established()
    t.conn.close(t.now)
    assert t.state is State.FIN_WAIT_1
    t.expect("FA", seq=L(1), ack=R(1))


def test_fin_follows_queued_data() -> None:
    t = established()
    t.send(b"last words")
    t.conn.close(t.now)
    t.expect("FPA", seq=L(1), payload=b"last words")


def test_fin_wait_1_ack_of_fin_goes_to_fin_wait_2() -> None:
    t = fin_wait_1()
    t.recv("A", ack=L(2))
    assert t.state is State.FIN_WAIT_2
    t.expect_nothing()


def test_fin_wait_1_ack_not_covering_fin_stays() -> None:
    t = established()
    t.send(b"abc")
    t.conn.close(t.now)
    t.expect("FPA")
    t.recv("A", ack=L(4))
    assert t.state is State.FIN_WAIT_1


def test_fin_wait_2_fin_goes_to_time_wait() -> None:
    t = fin_wait_2()
    t.recv("FA", ack=L(2))
    assert t.state is State.TIME_WAIT
    t.expect("A", seq=L(2), ack=R(2))
    assert EofReceived in t.event_types()


def test_fin_in_fin_wait_1_with_ack_goes_to_time_wait() -> None:
    """RFC 9293 §3.10.7.4: FIN whose ACK covers our FIN: straight to TIME-WAIT."""
    t = fin_wait_1()
    t.recv("FA", ack=L(2))
    assert t.state is State.TIME_WAIT
    t.expect("A", ack=R(2))


def test_simultaneous_close_goes_through_closing() -> None:
    """RFC 9293 §3.6 figure 13."""
    t = fin_wait_1()
    t.recv("FA", ack=L(1))
    assert t.state is State.CLOSING
    t.expect("A", ack=R(2))
    t.recv("A", ack=L(2))
    assert t.state is State.TIME_WAIT


def test_closing_ignores_ack_not_covering_fin() -> None:
    t = closing()
    t.recv("A", ack=L(1))
    assert t.state is State.CLOSING


def test_closing_reacks_retransmitted_fin() -> None:
    t = closing()
    t.recv("FA", seq=R(1), ack=L(1), advance_peer=False)
    t.expect("A", ack=R(2))


def test_fin_makes_close_wait_with_eof() -> None:
    t = established()
    t.recv("FA")
    assert t.state is State.CLOSE_WAIT
    t.expect("A", ack=R(2))
    assert t.event_types() == [type(e) for e in t.events]
    assert EofReceived in t.event_types()
    assert t.conn.eof_received


def test_close_wait_can_still_send() -> None:
    """Half-close from the peer: we keep sending (RFC 9293 §3.6)."""
    t = close_wait()
    t.send(b"response")
    t.expect("PA", payload=b"response")


def test_close_wait_close_sends_fin_to_last_ack() -> None:
    t = close_wait()
    t.conn.close(t.now)
    assert t.state is State.LAST_ACK
    t.expect("FA", seq=L(1))


def test_last_ack_ack_of_fin_closes() -> None:
    t = last_ack()
    t.recv("A", ack=L(2))
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.NORMAL
    assert ConnectionClosed(CloseReason.NORMAL) in t.events


def test_last_ack_fin_retransmitted_when_lost() -> None:
    t = last_ack()
    t.advance(t.conn.rtt.rto)
    t.expect("FA", seq=L(1))


def test_fin_lost_is_retransmitted_in_fin_wait_1() -> None:
    t = fin_wait_1()
    t.advance(t.conn.rtt.rto)
    t.expect("FA", seq=L(1))
    t.recv("A", ack=L(2))
    assert t.state is State.FIN_WAIT_2


def test_half_close_keeps_reading() -> None:
    t = established()
    t.conn.shutdown_write()
    t.expect("FA")
    t.recv("A", ack=L(2))
    assert t.state is State.FIN_WAIT_2
    t.recv("PA", ack=L(2), payload=b"still here")
    t.expect("A", ack=R(11))
    assert t.read() == b"still here"
    t.recv("FA", ack=L(2))
    assert t.state is State.TIME_WAIT


def test_shutdown_then_send_is_broken_pipe() -> None:
    t = established()
    t.conn.shutdown_write()
    with pytest.raises(BrokenPipeError):
        t.send(b"x")
    assert t.conn.send_space == 0


def test_shutdown_in_syn_sent_sends_fin_after_handshake() -> None:
    t = syn_sent()
    t.send(b"req")
    t.conn.shutdown_write()
    t.expect_nothing()
    t.recv("SA", ack=L(1))
    assert t.state is State.FIN_WAIT_1
    t.expect("FPA", seq=L(1), payload=b"req")


def test_close_in_syn_sent_just_closes() -> None:
    t = syn_sent()
    t.conn.close(t.now)
    assert t.state is State.CLOSED
    t.expect_nothing()


def test_close_in_syn_received_fins_after_establishing() -> None:
    t = syn_received()
    t.conn.close(t.now)
    t.expect_nothing()
    t.recv("A", ack=L(1))
    assert t.state is State.FIN_WAIT_1
    t.expect("FA", seq=L(1))


def test_close_with_unread_data_resets() -> None:
    """Linux/RFC 2525 §2.17: data the application never read is reported by RST."""
    t = established()
    t.recv("PA", payload=b"unread")
    t.expect("A")
    t.conn.close(t.now)
    t.expect("RA", seq=L(1), ack=R(7))  # Linux's active reset acknowledges too
    assert t.state is State.CLOSED


def test_data_after_close_is_answered_with_reset() -> None:
    t = fin_wait_2()
    t.recv("PA", ack=L(2), payload=b"nobody reads this")
    t.expect("R", seq=L(2))
    assert t.state is State.CLOSED


def test_data_after_close_from_a_peer_that_has_not_seen_our_fin_gets_its_rst() -> None:
    """The RST answers the segment, <SEQ=SEG.ACK><CTL=RST>, as Linux's does: for a
    peer that has not received our FIN that is exactly its RCV.NXT.  SND.NXT, past
    the FIN, would only be in its window, and an RFC 5961 peer answers such a RST
    with a challenge ACK instead of resetting."""
    t = fin_wait_1()  # FIN sent at L(1), SND.NXT = L(2)
    t.recv("PA", ack=L(1), payload=b"nobody reads this")
    t.expect("R", seq=L(1))
    assert t.state is State.CLOSED


def test_a_duplicate_of_data_read_before_close_is_not_reset() -> None:
    """Only new data is lost on a closed socket (Linux resets when the segment ends
    beyond RCV.NXT); a retransmission of what was read fails the sequence check
    first and is just acknowledged."""
    t = established()
    t.recv("PA", payload=b"read")
    assert t.read() == b"read"
    t.output()
    t.conn.close(t.now)
    t.expect("FA", seq=L(1))
    t.recv("PA", seq=R(1), ack=L(1), payload=b"read", advance_peer=False)
    t.expect("A", ack=R(5))
    assert t.state is State.FIN_WAIT_1


def test_fin_with_data_delivers_then_eof() -> None:
    t = established()
    t.recv("FPA", payload=b"bye")
    assert t.read() == b"bye"
    t.expect("A", ack=R(5))
    assert t.state is State.CLOSE_WAIT


def test_fin_beyond_a_hole_waits_for_the_hole() -> None:
    t = established()
    t.recv("FPA", seq=R(6), payload=b"world", advance_peer=False)
    assert t.state is State.ESTABLISHED
    t.expect("A", ack=R(1))
    t.recv("PA", seq=R(1), payload=b"hello", advance_peer=False)
    assert t.state is State.CLOSE_WAIT
    assert t.read() == b"helloworld"
    t.expect("A", ack=R(12))


def test_close_is_idempotent() -> None:
    t = fin_wait_1()
    t.conn.close(t.now)
    t.expect_nothing()
    assert t.state is State.FIN_WAIT_1


# -- TIME-WAIT -------------------------------------------------------------------


def test_time_wait_lasts_two_msl() -> None:
    t = time_wait()
    t.advance(59.9)
    assert t.state is State.TIME_WAIT
    t.advance(0.2)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.NORMAL


def test_time_wait_msl_is_configurable() -> None:
    t = time_wait(opts(msl=5.0))
    t.advance(10.01)
    assert t.state is State.CLOSED


def test_time_wait_reacks_retransmitted_fin_and_restarts_2msl() -> None:
    t = time_wait()
    t.advance(50)
    t.recv("FA", seq=R(1), ack=L(2), advance_peer=False)
    t.expect("A", seq=L(2), ack=R(2))
    assert t.conn.timers.get(TimerName.TIME_WAIT) == pytest.approx(t.now + 60)
    t.advance(50)
    assert t.state is State.TIME_WAIT
    t.advance(10.1)
    assert t.state is State.CLOSED


def test_time_wait_ignores_rst_rfc1337() -> None:
    t = time_wait()
    t.recv("R", seq=R(2))
    assert t.state is State.TIME_WAIT
    t.expect_nothing()


def test_time_wait_rst_closes_without_rfc1337() -> None:
    t = time_wait(opts(rfc1337=False))
    t.recv("R", seq=R(2))
    assert t.state is State.CLOSED


def test_time_wait_syn_gets_challenge_ack() -> None:
    t = time_wait()
    t.recv("S", seq=R(1000))
    t.expect("A", ack=R(2))
    assert t.state is State.TIME_WAIT


def test_time_wait_new_syn_with_higher_seq_may_reopen() -> None:
    """RFC 9293 §3.6.1 / RFC 6191: the stack may reuse the 4-tuple for a newer SYN."""
    from aiotcp.core.segment import SYN, Segment

    t = time_wait()
    assert t.conn.accepts_new_syn(Segment(80, 49152, R(100000), 0, SYN))
    assert not t.conn.accepts_new_syn(Segment(80, 49152, R(0), 0, SYN))
    assert not established().conn.accepts_new_syn(Segment(80, 49152, R(9), 0, SYN))


def test_time_wait_sends_no_data() -> None:
    t = time_wait()
    t.advance(1)
    t.expect_nothing()


def test_time_wait_cancels_other_timers() -> None:
    t = time_wait()
    assert list(t.conn.info(t.now).timers) == ["time_wait"]


def test_bare_fin_accepted_with_zero_window() -> None:
    t = established(opts(recv_buffer=10))
    t.recv("PA", payload=b"0123456789")
    t.expect("A", window=0)
    t.recv("FA")
    assert t.state is State.CLOSE_WAIT
    t.expect("A", ack=R(12))
    assert t.read() == b"0123456789"


def test_fin_with_data_beyond_zero_window_waits() -> None:
    t = established(opts(recv_buffer=10))
    t.recv("PA", payload=b"0123456789")
    t.expect("A", window=0)
    t.recv("FPA", payload=b"more", advance_peer=False)
    assert t.state is State.ESTABLISHED
    t.expect("A", ack=R(11), window=0)


def test_time_wait_reopen_by_newer_timestamp() -> None:
    """RFC 6191: with timestamps, a SYN is newer when its TSval is larger."""
    from aiotcp.core.segment import SYN, Segment

    t = time_wait(opts(timestamps=True))
    assert not t.conn.ts_ok  # the fixture peer offered none: sequence rule applies
    t2 = established(opts(timestamps=True), ts_val=100, ts_ecr=1)
    t2.conn.close(t2.now)
    t2.output()
    t2.recv("A", ack=L(2), ts_val=101)
    t2.recv("FA", ack=L(2), ts_val=102)
    assert t2.state is State.TIME_WAIT
    assert t2.conn.accepts_new_syn(Segment(80, 49152, R(0), 0, SYN, ts_val=500))
    assert not t2.conn.accepts_new_syn(Segment(80, 49152, R(99999), 0, SYN, ts_val=50))
