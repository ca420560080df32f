"""``Connection.set_option``: setsockopt on a live connection, with Linux's side effects.

Each test drives a real core connection against a scripted peer and checks what
goes on the wire and when the timers fire, not only the stored value.
"""

from __future__ import annotations

import pytest

from aiotcp.core.congestion.cubic import Cubic
from aiotcp.core.congestion.newreno import NewReno
from aiotcp.core.connection import window_scale_for
from aiotcp.core.events import CloseReason, SendSpaceAvailable
from aiotcp.core.options import RECV_BUFFER_AUTOTUNE_START
from aiotcp.core.state import State
from aiotcp.core.timers import TimerName
from aiotcp.testing.corekit import Harness, L, R, closed, established, opts, syn_sent

# -- checking and scope -------------------------------------------------------------


def test_unknown_option_raises_type_error_and_changes_nothing() -> None:
    t = established()
    before = t.conn.options
    with pytest.raises(TypeError, match="unknown TCP option 'nodelayy'"):
        t.conn.set_option("nodelayy", True, t.now)
    assert t.conn.options is before


def test_wrong_type_raises_type_error_naming_the_option() -> None:
    t = established()
    with pytest.raises(TypeError, match="keepalive_idle"):
        t.conn.set_option("keepalive_idle", "10", t.now)
    assert t.conn.options.keepalive_idle == 7200.0


def test_zero_and_one_stand_for_booleans_as_in_setsockopt() -> None:
    t = established()
    t.conn.set_option("nodelay", 1, t.now)
    assert t.conn.options.nodelay is True


def test_only_this_connection_changes() -> None:
    shared = opts()
    a, b = established(shared), established(shared)
    assert a.conn.options is b.conn.options  # the harness shares one object
    a.conn.set_option("nodelay", True, a.now)
    assert a.conn.options.nodelay
    assert not b.conn.options.nodelay
    assert not shared.nodelay


# -- TCP_NODELAY -------------------------------------------------------------------


def test_nodelay_releases_what_nagle_held() -> None:
    t = established()
    t.send(b"a")
    t.expect("PA", seq=L(1), payload=b"a")
    t.send(b"b")
    t.expect_nothing()  # Nagle: one small segment in flight at a time
    t.conn.set_option("nodelay", True, t.now)
    t.expect("PA", seq=L(2), payload=b"b")


def test_nodelay_also_pushes_an_autocorked_tail() -> None:
    """Linux's TCP_NODELAY pushes the pending frames, autocorking notwithstanding."""
    t = established(opts(nodelay=False))
    t.conn.cork = True  # the transport corks for the rest of a burst
    t.send(b"tail")
    t.expect_nothing()
    t.conn.set_option("nodelay", True, t.now)
    t.expect("PA", seq=L(1), payload=b"tail")


def test_nodelay_off_holds_small_segments_again() -> None:
    t = established(opts(nodelay=True))
    t.conn.set_option("nodelay", False, t.now)
    t.send(b"a")
    t.expect("PA", payload=b"a")
    t.send(b"b")
    t.expect_nothing()


# -- SO_KEEPALIVE, TCP_KEEPIDLE / KEEPINTVL / KEEPCNT ----------------------------

IDLE = opts(keepalive_idle=100.0, keepalive_interval=10.0, keepalive_count=3)
KA = IDLE.replace(keepalive=True)


def test_keepalive_on_probes_a_whole_idle_period_after_the_call() -> None:
    """Linux ``tcp_set_keepalive``: keepalive_time from now, however long it was idle."""
    t = established(IDLE)
    t.advance(500)
    assert TimerName.KEEPALIVE not in t.conn.timers
    t.conn.set_option("keepalive", True, t.now)
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(600)
    t.advance(99.9)
    t.expect_nothing()
    t.advance(0.2)
    probe = t.expect("A", seq=L(0), ack=R(1))
    assert not probe.payload
    assert t.conn.counters.keepalive_probes == 1


def test_keepalive_on_again_does_not_restart_the_timer() -> None:
    t = established(KA)
    t.advance(50)
    t.conn.set_option("keepalive", True, t.now)
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(100)


def test_keepalive_on_before_established_is_armed_by_the_handshake() -> None:
    t = syn_sent(IDLE)
    t.conn.set_option("keepalive", True, t.now)
    assert TimerName.KEEPALIVE not in t.conn.timers
    t.advance(0.5)
    t.recv("SA", ack=L(1), mss=1460)
    t.expect("A")
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(100.5)


def test_keepalive_off_cancels_probing_and_on_again_counts_afresh() -> None:
    t = established(KA)
    t.advance(110.1)
    assert len(t.output()) == 2  # probes at 100 and 110, unanswered
    t.conn.set_option("keepalive", False, t.now)
    assert TimerName.KEEPALIVE not in t.conn.timers
    t.advance(1000)
    t.expect_nothing()
    assert t.state is State.ESTABLISHED
    # On again: a full count of probes before giving up, not the one left over.
    t.conn.set_option("keepalive", True, t.now)
    start = t.now
    t.advance(100 + 2 * 10 + 5)
    assert len(t.output()) == 3
    assert t.state is State.ESTABLISHED
    t.advance(start + 130.1 - t.now)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT


def test_shorter_keepalive_idle_rearms_from_the_last_segment_heard() -> None:
    t = established(KA)
    t.advance(60)
    t.recv("PA", payload=b"hi")
    t.expect("A")
    t.advance(20)  # now 80, last heard at 60
    t.conn.set_option("keepalive_idle", 30.0, t.now)
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(90)
    t.advance(9.9)
    t.expect_nothing()
    t.advance(0.2)
    t.expect("A", seq=L(0))


def test_longer_keepalive_idle_postpones_the_probe() -> None:
    t = established(KA)
    t.advance(50)
    t.conn.set_option("keepalive_idle", 300.0, t.now)
    t.advance(249.9)
    t.expect_nothing()
    t.advance(0.2)
    t.expect("A", seq=L(0))


def test_keepalive_idle_already_exceeded_probes_now() -> None:
    """Linux ``tcp_sock_set_keepidle_locked``: elapsed >= new idle -> timer at 0."""
    t = established(KA)
    t.advance(80)
    t.conn.set_option("keepalive_idle", 60.0, t.now)
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(80)
    t.advance(0)
    t.expect("A", seq=L(0))
    assert t.conn.counters.keepalive_probes == 1


def test_keepalive_idle_while_keepalive_is_off_arms_nothing() -> None:
    t = established(IDLE)
    t.conn.set_option("keepalive_idle", 10.0, t.now)
    assert TimerName.KEEPALIVE not in t.conn.timers
    t.advance(100)
    t.expect_nothing()


def test_keepalive_count_takes_effect_at_the_next_probe() -> None:
    t = established(KA)
    t.advance(100)
    t.expect("A", seq=L(0))
    t.conn.set_option("keepalive_count", 1, t.now)
    t.advance(9.9)
    assert t.state is State.ESTABLISHED
    t.advance(0.2)
    assert t.state is State.CLOSED
    t.expect("RA")


def test_keepalive_interval_takes_effect_after_the_probe_already_scheduled() -> None:
    t = established(KA)
    t.advance(100)
    t.expect("A", seq=L(0))
    t.conn.set_option("keepalive_interval", 2.0, t.now)
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(110)
    t.advance(10)
    t.expect("A", seq=L(0))
    assert t.conn.timers.get(TimerName.KEEPALIVE) == pytest.approx(112)


# -- TCP_USER_TIMEOUT --------------------------------------------------------------


def test_user_timeout_set_with_data_in_flight_aborts_on_time() -> None:
    t = established()
    t.send(b"x")
    t.output()  # sent at 0
    t.advance(0.5)
    t.conn.set_option("user_timeout", 2.0, t.now)
    assert t.conn.timers.get(TimerName.USER_TIMEOUT) == pytest.approx(2.0)
    t.advance(1.4)
    assert t.state is State.ESTABLISHED
    t.advance(0.2)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT


def test_user_timeout_already_exceeded_fires_at_once() -> None:
    t = established(opts(retries=50, rto_max=100.0))
    t.send(b"x")
    t.output()
    t.advance(3)
    t.conn.set_option("user_timeout", 2.0, t.now)
    t.advance(0)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.TIMEOUT


def test_user_timeout_zero_cancels_it() -> None:
    t = established(opts(user_timeout=2.0, retries=50, rto_max=100.0))
    t.send(b"x")
    t.output()
    assert TimerName.USER_TIMEOUT in t.conn.timers
    t.conn.set_option("user_timeout", 0.0, t.now)
    assert TimerName.USER_TIMEOUT not in t.conn.timers
    t.advance(10)
    assert t.state is State.ESTABLISHED


def test_user_timeout_covers_window_probing_when_set_later() -> None:
    t = established(window=0)
    t.send(b"x")
    t.output()
    assert TimerName.PERSIST in t.conn.timers
    t.conn.set_option("user_timeout", 3.0, t.now)
    assert t.conn.timers.get(TimerName.USER_TIMEOUT) == pytest.approx(3.0)
    t.advance(3.1)
    assert t.state is State.CLOSED


def test_user_timeout_on_an_idle_connection_arms_nothing() -> None:
    t = established()
    t.conn.set_option("user_timeout", 2.0, t.now)
    assert TimerName.USER_TIMEOUT not in t.conn.timers
    t.send(b"x")
    t.output()
    assert t.conn.timers.get(TimerName.USER_TIMEOUT) == pytest.approx(2.0)


# -- TCP_CONGESTION ----------------------------------------------------------------


def test_congestion_switch_keeps_the_windows_and_grows_by_the_new_rule() -> None:
    t = established(opts(nodelay=True, congestion="newreno"), mss=1000)
    cc = t.conn.cc
    cc.cwnd = cc.ssthresh = 10_000  # congestion avoidance, where the algorithms differ
    t.conn.set_option("congestion", "cubic", t.now)
    assert isinstance(t.conn.cc, Cubic)
    assert t.conn.recovery.cc is t.conn.cc
    assert (t.conn.cc.cwnd, t.conn.cc.ssthresh) == (10_000, 10_000)
    assert t.conn.info(t.now).congestion == "cubic"
    t.send(b"d" * 10_000)
    assert len(t.output()) == 10  # the carried-over window, all of it
    t.advance(0.1)
    t.recv("A", ack=L(10_001))
    cubic, reno = Cubic(1000), NewReno(1000)
    for ref in (cubic, reno):
        ref.cwnd = ref.ssthresh = 10_000
        ref.rtt = t.conn.rtt
        ref.on_ack(10_000, 10_000, t.now)
    assert t.conn.cc.cwnd == cubic.cwnd != reno.cwnd


def test_congestion_switch_in_recovery_carries_on_with_the_new_controller() -> None:
    mss = 100
    t = established(opts(nodelay=True, congestion="newreno"), mss=mss)
    t.send(b"d" * (8 * mss))
    assert len(t.output()) == 8
    for _ in range(3):
        t.recv("A", ack=L(1))
    assert t.conn.recovery.in_recovery
    old = t.conn.cc
    windows = (old.cwnd, old.ssthresh)
    t.conn.set_option("congestion", "cubic", t.now)
    new = t.conn.cc
    assert isinstance(new, Cubic) and t.conn.recovery.cc is new
    assert (new.cwnd, new.ssthresh) == windows
    assert t.conn.recovery.in_recovery
    t.expect("A", seq=L(1), payload=b"d" * mss)  # the fast retransmit still goes
    t.recv("A", ack=L(301))  # partial ACK: PRR now paces the new controller
    t.expect("A", seq=L(301), payload=b"d" * mss)
    t.recv("A", ack=L(801))
    assert not t.conn.recovery.in_recovery
    assert new.cwnd == new.ssthresh == windows[1]
    assert (old.cwnd, old.ssthresh) == windows  # the old one is out of the loop


def test_unknown_congestion_control_raises_and_keeps_the_old_one() -> None:
    t = established()
    cc, options = t.conn.cc, t.conn.options
    with pytest.raises(ValueError, match="unknown congestion control 'vegas'"):
        t.conn.set_option("congestion", "vegas", t.now)
    assert t.conn.cc is cc
    assert t.conn.options is options
    assert t.conn.recovery.cc is cc


def test_the_same_congestion_control_again_keeps_its_state() -> None:
    """Linux: the same ops again is no reinit.  ``reno`` is NewReno's other name."""
    t = established(opts(congestion="newreno"))
    cc = t.conn.cc
    t.conn.set_option("congestion", "reno", t.now)
    assert t.conn.cc is cc


# -- SO_SNDBUF ---------------------------------------------------------------------


def test_send_buffer_shrunk_below_its_contents_keeps_every_byte() -> None:
    t = established(opts(nodelay=True, send_buffer=10_000), mss=1000, window=2000)
    data = bytes(range(256)) * 31 + b"end"  # 7939 bytes
    assert t.send(data) == len(data)
    t.conn.set_option("send_buffer", 3000, t.now)
    assert t.conn.send_space == 0
    assert t.send(b"more") == 0  # full until ACKs drain it below the new size
    assert len(t.conn.send_buffer) == len(data)
    got = bytearray()
    while len(got) < len(data):
        segs = [s for s in t.output() if s.payload]
        assert segs, "data stalled"
        got += b"".join(bytes(s.payload) for s in segs)
        t.recv("A", ack=L(1 + len(got)), window=2000)
    assert bytes(got) == data
    assert SendSpaceAvailable in t.event_types()
    assert t.conn.send_space == 3000


def test_send_buffer_grown_reports_space_to_a_blocked_writer() -> None:
    t = established(opts(send_buffer=1000), window=0)
    assert t.send(b"x" * 1500) == 1000
    t.clear_events()
    t.conn.set_option("send_buffer", 4000, t.now)
    assert t.conn.next_event() == SendSpaceAvailable(3000)
    assert t.conn.next_event() is None
    assert t.send(b"x" * 500) == 500


# -- SO_RCVBUF ---------------------------------------------------------------------


def test_recv_buffer_shrunk_never_retracts_the_advertised_edge() -> None:
    """RFC 9293 §3.8.6 / RFC 7323 §2.4: the smaller buffer applies to new window only."""
    t = established(opts(recv_buffer=60_000), mss=1000)
    edge = R(1 + 60_000)
    assert t.conn.rcv_adv == edge
    t.conn.set_option("recv_buffer", 10_000, t.now)
    t.recv("PA", payload=b"x" * 1000)
    seg = t.expect("A", ack=R(1001))
    assert seg.ack + seg.window == edge  # 59000, not 9000
    while t.peer_nxt != edge:  # the peer may fill all it was offered
        t.recv("A", payload=b"y" * 1000)
    assert t.conn.readable_bytes == 60_000  # nothing in the old window was dropped
    t.output()
    assert t.conn.rcv_wnd == 0
    t.read()
    t.expect("A", ack=edge, window=10_000)  # it reopens to the new, fixed size


def test_recv_buffer_grown_opens_the_window_at_once() -> None:
    t = established(opts(recv_buffer=20_000), mss=1000)
    while t.conn.rcv_wnd:
        t.recv("A", payload=b"z" * 1000)
    last = t.output()[-1]  # before it, an ACK per two segments (no stretch ACKs)
    assert (last.ack, last.window) == (R(20_001), 0)
    t.conn.set_option("recv_buffer", 50_000, t.now)
    t.expect("A", ack=R(20_001), window=30_000)  # no read needed: there is room


def test_recv_buffer_fixes_the_size_and_stops_autotuning() -> None:
    t = established(opts(window_scaling=True, recv_buffer=None), mss=1448, wscale=7)
    t.conn.rtt.sample(0.010)
    assert t.conn.recv_buffer.capacity == RECV_BUFFER_AUTOTUNE_START
    t.conn.set_option("recv_buffer", 200_000, t.now)
    assert t.conn.recv_buffer.capacity == 200_000
    for _ in range(6):  # a reader that keeps up, which autotuning would reward
        for _ in range(2):
            n = min(64 * 1448, t.conn.rcv_wnd)
            t.recv("A", payload=bytes(n))
            t.read()
            t.output()
        t.advance(0.010)
    assert t.conn.recv_buffer.capacity == 200_000


# -- other options -----------------------------------------------------------------


def test_rto_min_applies_to_the_next_timeout() -> None:
    t = established()
    t.conn.set_option("rto_min", 2.0, t.now)
    t.send(b"x")
    t.output()
    assert t.conn.timers.get(TimerName.RETRANSMIT) == pytest.approx(2.0)


def test_ooo_max_segments_bounds_the_next_out_of_order_range() -> None:
    t = established()
    t.conn.set_option("ooo_max_segments", 1, t.now)
    t.recv("A", seq=R(101), payload=b"a" * 10, advance_peer=False)
    t.recv("A", seq=R(201), payload=b"b" * 10, advance_peer=False)
    assert t.conn.counters.ooo_dropped == 1


def test_handshake_options_stay_as_negotiated_on_a_live_connection() -> None:
    t = established(mss=1000, sack_permitted=True)
    assert t.conn.sack_ok
    t.conn.set_option("mss", 500, t.now)
    t.conn.set_option("sack", False, t.now)
    assert t.conn.options.mss == 500
    assert t.conn.mss == 1000
    assert t.conn.sack_ok
    t.send(b"s" * 1000)
    t.expect("PA", payload=b"s" * 1000)


def test_a_connection_not_yet_opened_handshakes_with_the_new_values() -> None:
    t: Harness = closed(opts(window_scaling=True, recv_buffer=None))
    t.conn.set_option("recv_buffer", 1 << 20, t.now)
    t.conn.set_option("mss", 1200, t.now)
    t.conn.set_option("congestion", "newreno", t.now)
    t.conn.set_option("initial_window", 4, t.now)
    t.conn.connect(t.now)
    syn = t.expect("S")
    assert syn.mss == 1200
    assert syn.wscale == window_scale_for(1 << 20) == 5
    assert syn.window == 0xFFFF
    t.recv("SA", ack=L(1), mss=1200, wscale=7)
    t.expect("A")
    assert isinstance(t.conn.cc, NewReno)
    assert t.conn.cc.cwnd == 4 * 1200
