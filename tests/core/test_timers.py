"""Timers other than RTO: delayed ACK, persist, keepalive, FIN-WAIT-2, user timeout."""

from __future__ import annotations

import pytest

from aiotcp.core.events import CloseReason
from aiotcp.core.state import State
from aiotcp.core.timers import TimerName, Timers
from aiotcp.testing.corekit import L, R, established, fin_wait_1, opts, quick_acks_spent

DELACK = opts(delayed_ack=True)

# -- delayed ACK (RFC 5681 §4.2, RFC 9293 §3.8.6.3) ------------------------------


def test_single_segment_ack_is_delayed() -> None:
    t = quick_acks_spent(established(DELACK, mss=1000))
    t.recv("PA", payload=b"x" * 100)
    t.expect_nothing()
    assert t.conn.timers.get(TimerName.DELAYED_ACK) == pytest.approx(0.040)


def test_delayed_ack_sent_within_40ms() -> None:
    t = quick_acks_spent(established(DELACK))
    t.recv("PA", payload=b"x" * 100)
    t.advance(0.039)
    t.expect_nothing()
    t.advance(0.002)
    t.expect("A", ack=R(101))


def test_every_second_full_segment_is_acked_at_once() -> None:
    t = quick_acks_spent(established(DELACK, mss=1000))
    t.recv("A", payload=b"a" * 1000)
    t.expect_nothing()
    t.recv("A", payload=b"b" * 1000)
    t.expect("A", ack=R(2001))
    assert TimerName.DELAYED_ACK not in t.conn.timers


def test_out_of_order_segment_acked_immediately_even_with_delack() -> None:
    t = established(DELACK)
    t.recv("A", seq=R(101), payload=b"x" * 100, advance_peer=False)
    t.expect("A", ack=R(1))


def test_segment_filling_a_hole_acked_immediately() -> None:
    t = established(DELACK)
    t.recv("A", seq=R(101), payload=b"x" * 100, advance_peer=False)
    t.expect("A", ack=R(1))
    t.recv("A", seq=R(1), payload=b"y" * 100, advance_peer=False)
    t.expect("A", ack=R(201))


def test_delayed_ack_piggybacks_on_data() -> None:
    t = established(DELACK)
    t.recv("PA", payload=b"request")
    t.send(b"response")
    t.expect("PA", ack=R(8), payload=b"response")
    assert TimerName.DELAYED_ACK not in t.conn.timers
    t.advance(0.1)
    t.expect_nothing()


def test_fin_is_acked_immediately() -> None:
    t = established(DELACK)
    t.recv("FA")
    t.expect("A", ack=R(2))


# -- Nagle (RFC 9293 §3.7.4) -------------------------------------------------------


def test_nagle_holds_small_segment_while_data_unacked() -> None:
    t = established()
    t.send(b"a")
    t.expect("PA", payload=b"a")
    t.send(b"b")
    t.send(b"c")
    t.expect_nothing()
    t.recv("A", ack=L(2))
    t.expect("PA", seq=L(2), payload=b"bc")


def test_nodelay_sends_small_segments_at_once() -> None:
    t = established(opts(nodelay=True))
    t.send(b"a")
    t.expect("PA", payload=b"a")
    t.send(b"b")
    t.expect("PA", payload=b"b")


def test_nagle_does_not_hold_full_segments() -> None:
    t = established(mss=100)
    t.send(b"a")
    t.expect("PA")
    t.send(b"b" * 250)
    t.expect("A", payload=b"b" * 100)
    t.expect("A", payload=b"b" * 100)
    t.expect_nothing()  # the 50-byte tail waits for the ACK


def test_nagle_does_not_hold_fin() -> None:
    t = established()
    t.send(b"a")
    t.expect("PA")
    t.send(b"b")
    t.conn.close(t.now)
    t.expect("FPA", payload=b"b")


# -- sender SWS avoidance and persist (RFC 9293 §3.8.6) --------------------------


def test_sender_avoids_silly_window() -> None:
    t = established(mss=1000, window=4000)
    t.send(b"s" * 8000)
    assert len(t.output()) == 4
    t.recv("A", ack=L(4001), window=100)  # only 100 bytes open of 4000 seen
    t.expect_nothing()


def test_sender_sends_window_of_half_the_max() -> None:
    t = established(mss=1000, window=4000)
    t.send(b"s" * 8000)
    t.output()
    t.recv("A", ack=L(4001), window=2000)
    assert len(t.output()) == 2


def test_zero_window_arms_persist_timer() -> None:
    t = established(window=0)
    t.send(b"blocked")
    t.expect_nothing()
    assert TimerName.PERSIST in t.conn.timers
    assert TimerName.RETRANSMIT not in t.conn.timers


def test_persist_probe_sent_and_backs_off() -> None:
    t = established(window=0)
    t.send(b"blocked")
    t.output()
    rto = t.conn.rtt.rto
    t.advance(rto)
    probe = t.expect("A", seq=L(0), ack=R(1))  # Linux-style: SND.UNA - 1, no data
    assert not probe.payload
    t.advance(2 * rto - 0.01)
    t.expect_nothing()
    t.advance(0.02)
    t.expect("A", seq=L(0))
    assert t.conn.counters.zero_window_probes == 2


def test_probe_answer_with_open_window_releases_data() -> None:
    t = established(window=0)
    t.send(b"blocked")
    t.advance(t.conn.rtt.rto)
    t.expect("A", seq=L(0))
    t.recv("A", ack=L(1), window=1000)
    t.expect("PA", payload=b"blocked")
    assert TimerName.PERSIST not in t.conn.timers


def test_persist_keeps_probing_while_peer_answers() -> None:
    t = established(opts(retries=3), window=0)
    t.send(b"blocked")
    t.expect_nothing()
    for _ in range(8):
        t.advance(t.conn.timers.get(TimerName.PERSIST) - t.now)  # type: ignore[operator]
        t.expect("A", seq=L(0))
        t.recv("A", ack=L(1), window=0)
    assert t.state is State.ESTABLISHED


def test_persist_gives_up_when_peer_is_silent() -> None:
    t = established(opts(retries=3, rto_max=1.0), window=0)
    t.send(b"blocked")
    t.advance(20)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT


def test_small_window_data_forced_out_by_persist_override() -> None:
    """RFC 9293 §3.8.6.2.1: the override timeout sends a small segment eventually."""
    t = established(mss=1000, window=4000)
    t.send(b"s" * 4100)
    t.output()
    t.recv("A", ack=L(4001), window=50)
    t.expect_nothing()
    t.advance(t.conn.rtt.rto)
    t.expect("A", seq=L(4001), payload=b"s" * 50)


# -- keepalive (RFC 9293 §3.8.4) -------------------------------------------------

KA = opts(keepalive=True, keepalive_idle=100.0, keepalive_interval=10.0, keepalive_count=3)


def test_keepalive_off_by_default() -> None:
    t = established()
    t.advance(10000)
    t.expect_nothing()
    assert t.state is State.ESTABLISHED


def test_keepalive_probe_after_idle() -> None:
    t = established(KA)
    t.advance(99.9)
    t.expect_nothing()
    t.advance(0.2)
    probe = t.expect("A", seq=L(0), ack=R(1))
    assert not probe.payload


def test_keepalive_answer_resets_probing() -> None:
    t = established(KA)
    t.advance(100)
    t.expect("A", seq=L(0))
    t.recv("A", ack=L(1))
    t.advance(99)
    t.expect_nothing()
    t.advance(1.1)
    t.expect("A", seq=L(0))
    assert t.state is State.ESTABLISHED


def test_keepalive_gives_up_after_count_probes() -> None:
    t = established(KA)
    t.advance(100 + 3 * 10 - 0.1)
    assert len(t.output()) == 3
    assert t.state is State.ESTABLISHED
    t.advance(0.2)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT
    t.expect("RA", seq=t.conn.snd_nxt)  # as Linux: the peer hears of it, if it can


def test_keepalive_idle_measured_from_last_segment() -> None:
    t = established(KA)
    t.advance(60)
    t.recv("PA", payload=b"hi")
    t.expect("A")
    t.advance(99)
    t.expect_nothing()
    t.advance(1.1)
    t.expect("A", seq=L(0))


def test_keepalive_linux_defaults() -> None:
    o = opts()
    assert (o.keepalive_idle, o.keepalive_interval, o.keepalive_count) == (7200.0, 75.0, 9)


# -- FIN-WAIT-2 timeout and user timeout -----------------------------------------


def test_orphaned_fin_wait_2_times_out() -> None:
    t = fin_wait_1()
    t.recv("A", ack=L(2))
    assert t.state is State.FIN_WAIT_2
    t.advance(59.9)
    assert t.state is State.FIN_WAIT_2
    t.advance(0.2)
    assert t.state is State.CLOSED


def test_half_closed_fin_wait_2_does_not_time_out() -> None:
    t = established()
    t.conn.shutdown_write()
    t.expect("FA")
    t.recv("A", ack=L(2))
    t.advance(3600)
    assert t.state is State.FIN_WAIT_2


def test_close_after_shutdown_arms_fin_wait_2_timer() -> None:
    t = established(opts(fin_wait_2_timeout=5.0))
    t.conn.shutdown_write()
    t.output()
    t.recv("A", ack=L(2))
    t.conn.close(t.now)
    t.advance(5.1)
    assert t.state is State.CLOSED


def test_user_timeout_aborts_unacknowledged_data() -> None:
    """RFC 9293 §3.8.3 / RFC 5482."""
    t = established(opts(user_timeout=2.0))
    t.send(b"x")
    t.output()
    t.advance(1.9)
    assert t.state is State.ESTABLISHED
    t.advance(0.2)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT


def test_user_timeout_restarts_on_progress() -> None:
    t = established(opts(user_timeout=2.0, nodelay=True))
    t.send(b"x")
    t.output()
    t.advance(1.5)
    t.recv("A", ack=L(2))
    t.send(b"y")
    t.output()
    t.advance(1.5)
    assert t.state is State.ESTABLISHED


def test_user_timeout_covers_zero_window_probing() -> None:
    t = established(opts(user_timeout=3.0), window=0)
    t.send(b"x")
    t.output()
    t.advance(3.1)
    assert t.state is State.CLOSED


# -- the timer table -------------------------------------------------------------


def test_timers_table_next_deadline_and_expiry_order() -> None:
    timers = Timers()
    timers.set(TimerName.KEEPALIVE, 5.0)
    timers.set(TimerName.RETRANSMIT, 2.0)
    timers.set_if_idle(TimerName.RETRANSMIT, 9.0)
    assert timers.next_deadline() == 2.0
    assert timers.expired(6.0) == [TimerName.RETRANSMIT, TimerName.KEEPALIVE]
    timers.cancel(TimerName.RETRANSMIT)
    assert timers.remaining(1.0) == {"keepalive": 4.0}


def test_info_lists_pending_timers() -> None:
    t = established()
    t.send(b"x")
    t.output()
    info = t.conn.info(t.now).as_dict()
    assert "retransmit" in info["timers"]
    assert info["state"] == "ESTABLISHED"
    assert info["send_queue"] == 1


def test_persist_interval_keeps_backing_off_while_window_stays_zero() -> None:
    """RFC 9293 §3.8.6.1: SHOULD increase the probe interval exponentially."""
    t = established(opts(rto_max=100.0), window=0)
    t.send(b"blocked")
    t.expect_nothing()
    gaps = []
    last = t.now
    for _ in range(4):
        at = t.conn.timers.get(TimerName.PERSIST)
        assert at is not None
        t.advance(at - t.now)
        t.expect("A", seq=L(0))
        gaps.append(round(t.now - last, 6))
        last = t.now
        t.recv("A", ack=L(1), window=0)
    assert gaps == sorted(gaps) and gaps[-1] == 8 * gaps[0]


def test_window_opening_resets_persist_backoff() -> None:
    t = established(window=0)
    t.send(b"a")
    t.advance(t.conn.rtt.rto)
    t.output()
    t.recv("A", ack=L(1), window=100)
    t.expect("PA", payload=b"a")
    assert t.conn._persist_backoff == 0


def test_read_does_not_force_an_ack_when_the_field_is_already_at_its_maximum() -> None:
    """Without window scaling the field tops out at 65535: a larger free buffer gives
    no "window update" to send, so reading must not defeat the delayed ACK."""
    t = quick_acks_spent(established(opts(delayed_ack=True, recv_buffer=131072), mss=1460))
    t.recv("A", payload=b"x" * 1460)
    t.read()
    t.expect_nothing()
    t.advance(0.041)
    t.expect("A", window=0xFFFF)


def test_read_reopening_a_closed_window_updates_at_once_without_scaling() -> None:
    t = established(opts(delayed_ack=True, recv_buffer=70000), mss=1460)
    while t.conn.rcv_wnd:
        t.recv("A", payload=b"x" * min(1460, t.conn.rcv_wnd))
    t.output()
    t.read()
    t.expect("A", window=0xFFFF)


def test_keepalive_waits_while_data_is_outstanding() -> None:
    """MUST-26: keepalives only when no sent data is outstanding (RTO covers that)."""
    t = established(opts(keepalive=True, keepalive_idle=10.0, retries=50, rto_max=100.0))
    t.send(b"x")
    t.output()
    t.advance(10.5)
    assert t.conn.counters.keepalive_probes == 0
    assert t.conn.counters.rto_expirations > 0
