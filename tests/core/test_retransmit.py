"""Retransmission: RFC 6298 RTO, Karn, backoff, bounds; SYN / SYN-ACK retries."""

from __future__ import annotations

import pytest

from aiotcp.core.events import CloseReason, ConnectionClosed
from aiotcp.core.rto import RttEstimator
from aiotcp.core.state import State
from aiotcp.core.timers import TimerName
from aiotcp.testing.corekit import L, R, established, opts, syn_received, syn_sent


def test_syn_retransmitted_with_exponential_backoff() -> None:
    t = syn_sent()
    for gap in (1, 2, 4, 8):
        t.advance(gap - 0.001)
        t.expect_nothing()
        t.advance(0.001)
        t.expect("S", seq=L(0))


def test_syn_retries_end_in_timeout() -> None:
    """Linux tcp_syn_retries=6: 1+2+4+8+16+32 s of retries, gives up at 127 s."""
    t = syn_sent()
    t.advance(126.9)
    assert t.state is State.SYN_SENT
    assert sum(1 for s in t.output() if s.flags) == 6
    t.advance(0.2)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT
    assert ConnectionClosed(CloseReason.TIMEOUT) in t.events
    assert isinstance(CloseReason.TIMEOUT.exception(), TimeoutError)


def test_syn_retries_configurable() -> None:
    t = syn_sent(opts(syn_retries=1))
    t.advance(1)
    t.expect("S")
    t.advance(2)
    assert t.state is State.CLOSED


def test_synack_retransmitted_then_half_open_dropped() -> None:
    """synack_retries=5: 1+2+4+8+16, dropped at 63 s."""
    t = syn_received()
    t.advance(1)
    t.expect("SA", seq=L(0), ack=R(1))
    t.advance(61.9)
    assert t.state is State.SYN_RECEIVED
    t.advance(0.2)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT


def test_lost_handshake_ack_recovered_by_synack_retransmission() -> None:
    t = syn_received()
    t.advance(1)
    t.expect("SA")
    t.recv("A", ack=L(1))
    assert t.state is State.ESTABLISHED


def test_rto_after_lost_syn_falls_back_to_three_seconds() -> None:
    """RFC 6298 §5.7."""
    t = syn_sent()
    t.advance(1)
    t.expect("S")
    t.recv("SA", ack=L(1))
    assert t.conn.rtt.rto == 3.0


def test_handshake_gives_first_rtt_sample() -> None:
    t = syn_sent()
    t.advance(0.1)
    t.recv("SA", ack=L(1))
    assert t.conn.rtt.srtt == pytest.approx(0.1)
    assert t.conn.rtt.rttvar == pytest.approx(0.05)
    assert t.conn.rtt.rto == pytest.approx(0.3)


def test_data_retransmitted_after_rto() -> None:
    t = established()
    t.send(b"lost")
    t.expect("PA", seq=L(1))
    rto = t.conn.rtt.rto
    t.advance(rto - 0.01)
    t.expect_nothing()
    t.advance(0.01)
    t.expect("PA", seq=L(1), payload=b"lost")
    assert t.conn.counters.retransmits == 1


def test_rto_backs_off_exponentially() -> None:
    t = established()
    t.send(b"x")
    t.expect("PA")
    rto = t.conn.rtt.rto
    t.advance(rto)
    t.expect("PA")
    t.advance(2 * rto - 0.01)
    t.expect_nothing()
    t.advance(0.02)
    t.expect("PA")
    assert t.conn.rtt.backoff == 2


def test_rto_capped_at_rto_max() -> None:
    t = established(opts(rto_max=2.0, retries=30))
    t.send(b"x")
    t.output()
    t.advance(30)
    assert t.conn.rtt.rto == 2.0


def test_retransmissions_give_up_with_timeout() -> None:
    t = established(opts(retries=3))
    t.send(b"x")
    t.output()
    t.advance(100)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT
    assert t.conn.counters.rto_expirations == 3


def test_new_ack_restarts_timer_and_clears_backoff() -> None:
    t = established()
    t.send(b"ab")
    t.expect("PA")
    t.advance(t.conn.rtt.rto)
    t.expect("PA")
    assert t.conn.rtt.backoff == 1
    t.recv("A", ack=L(2))
    assert t.conn.rtt.backoff == 0
    assert TimerName.RETRANSMIT in t.conn.timers


def test_timer_stopped_when_everything_acked() -> None:
    """RFC 6298 §5.2."""
    t = established()
    t.send(b"ab")
    t.expect("PA")
    t.recv("A", ack=L(3))
    assert TimerName.RETRANSMIT not in t.conn.timers
    assert t.conn.next_deadline() is None


def test_karn_no_sample_from_retransmitted_segment() -> None:
    t = established()
    before = (t.conn.rtt.srtt, t.conn.rtt.rttvar)
    t.send(b"k")
    t.expect("PA")
    t.advance(t.conn.rtt.rto)
    t.expect("PA")
    t.advance(0.05)
    t.recv("A", ack=L(2))
    assert (t.conn.rtt.srtt, t.conn.rtt.rttvar) == before


def test_rtt_sampled_from_timed_segment() -> None:
    t = established()
    t.send(b"k")
    t.expect("PA")
    t.advance(0.08)
    t.recv("A", ack=L(2))
    assert t.conn.rtt.srtt is not None and t.conn.rtt.srtt > 0


def test_timestamps_give_rtt_sample_even_for_retransmission() -> None:
    """RFC 7323 §4.1: the echoed TSval identifies the transmission."""
    t = established(opts(timestamps=True), ts_val=1, ts_ecr=0)
    t.send(b"k")
    t.expect("PA")
    t.advance(t.conn.rtt.rto)
    seg = t.expect("PA")
    t.advance(0.03)
    t.recv("A", ack=L(2), ts_val=2, ts_ecr=seg.ts_val)
    # The handshake gave a 0 s sample; this 30 ms one moves SRTT by 1/8 of it.
    assert t.conn.rtt.srtt == pytest.approx(0.03 / 8, abs=0.0002)


def test_rto_collapses_cwnd_to_one_segment_and_goes_back_n() -> None:
    t = established(opts(nodelay=True), mss=100)
    t.send(b"d" * 500)
    assert len(t.output()) == 5
    t.advance(t.conn.rtt.rto)
    t.expect("A", seq=L(1), payload=b"d" * 100)
    t.expect_nothing()  # cwnd = 1 SMSS (RFC 5681 §3.1)
    assert t.conn.cc.cwnd == 100
    t.recv("A", ack=L(101))
    out = t.output()
    assert [s.seq for s in out] == [L(101), L(201)]


def test_retransmission_into_zero_window_still_probes() -> None:
    t = established()
    t.send(b"data")
    t.expect("PA")
    t.recv("A", ack=L(1), window=0)
    t.advance(t.conn.rtt.rto)
    t.expect("PA", seq=L(1))


def test_syn_not_retransmitted_after_establishment() -> None:
    t = established()
    t.advance(10)
    t.expect_nothing()


# -- the estimator on its own ----------------------------------------------------


def test_estimator_initial_rto_is_one_second() -> None:
    assert RttEstimator().rto == 1.0


def test_estimator_first_sample_rfc6298_2_2() -> None:
    e = RttEstimator(rto_min=0.0)
    e.sample(0.5)
    assert (e.srtt, e.rttvar, e.rto) == (0.5, 0.25, 1.5)


def test_estimator_next_samples_rfc6298_2_3() -> None:
    e = RttEstimator(rto_min=0.0)
    e.sample(1.0)
    e.sample(2.0)
    assert e.rttvar == pytest.approx(0.75 * 0.5 + 0.25 * 1.0)
    assert e.srtt == pytest.approx(0.875 * 1.0 + 0.125 * 2.0)


def test_estimator_min_and_max_bounds() -> None:
    """The floor bounds the variance term, as Linux's tcp_set_rto: SRTT + rto_min."""
    e = RttEstimator(rto_min=0.2, rto_max=5.0)
    e.sample(0.001)
    assert e.rto == pytest.approx(0.201)
    for _ in range(10):
        e.on_timeout()
    assert e.rto == 5.0
    e = RttEstimator(rto_min=0.03)
    for _ in range(20):
        e.sample(0.02)  # a steady 20 ms path: RTTVAR decays towards 0
    assert e.rto == pytest.approx(0.05, abs=1e-3)  # RFC 6298's floor alone: 30 ms


def test_estimator_backoff_cleared_by_sample() -> None:
    e = RttEstimator()
    e.on_timeout()
    assert e.rto == 2.0
    e.sample(0.3)
    assert e.backoff == 0


def test_r1_threshold_reports_delivery_problem() -> None:
    """RFC 9293 §3.8.3 MUST-20: advice at R1, the connection stays open until R2."""
    from aiotcp.core.events import DeliveryProblem

    t = established(opts(retries_r1=2))
    t.send(b"x")
    t.output()
    t.advance(t.conn.rtt.rto)
    assert DeliveryProblem not in t.event_types()
    t.advance(t.conn.rtt.rto)
    assert DeliveryProblem(2, None) in t.events
    assert t.state is State.ESTABLISHED


def test_r1_also_applies_to_syn_retries() -> None:
    from aiotcp.core.events import DeliveryProblem

    t = syn_sent()
    t.advance(7.1)  # three retransmissions: 1 + 2 + 4 s
    assert t.event_types().count(DeliveryProblem) == 1
