"""Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation, Linux
``tcp_rate.c``).

Each ACK yields a sample over the most recently sent range it delivered: the bytes
delivered since that range left, divided by the longer of its send phase (from
the start of the sample to its departure) and its ACK phase (from the delivery
before its departure to now).  The longer phase is taken so that neither a burst
that left at once nor a bunch of ACKs that arrived at once can overstate the rate;
an interval shorter than the minimum RTT is impossible and gives no sample.  While
the application, not the path, limits the flight the samples are flagged, and
until that flight is delivered.

The scoreboard tests drive ``Scoreboard`` directly (positions from 0, one "MSS"
of 1000 bytes); the connection tests check what the connection feeds it.
"""

from __future__ import annotations

import pytest

from aiotcp.core.scoreboard import Delivery, Scoreboard
from aiotcp.testing.corekit import Harness, L, established, opts

MSS = 1000


def board() -> Scoreboard:
    b = Scoreboard(0)
    b.set_mss(MSS)
    return b


def send(b: Scoreboard, first: int, count: int, now: float) -> None:
    """Segments ``first`` .. ``first + count - 1`` leave at ``now``, one run each."""
    for i in range(first, first + count):
        b.on_sent(i * MSS, MSS, now)


def ack(
    b: Scoreboard, upto: int, now: float, *sacked: tuple[int, int], snd_max: int = 100
) -> Delivery:
    """A cumulative ACK of segments below ``upto`` and SACK blocks of segments."""
    blocks = tuple((lo * MSS, hi * MSS) for lo, hi in sacked)
    return b.on_ack(upto * MSS, blocks, now, snd_max * MSS)


# -- the sample's interval -------------------------------------------------------------


def test_a_burst_acked_over_time_is_measured_over_the_ack_phase() -> None:
    """Ten segments leave at once (send phase 0); their ACKs come 10 ms apart from
    100 ms on.  The last ACK's sample covers the whole flight over the ACK phase,
    from the flight's start to now: 10000 bytes / 190 ms — not the send phase,
    which would make the rate infinite."""
    b = board()
    send(b, 0, 10, now=0.0)
    for k in range(10):
        d = ack(b, k + 1, now=0.100 + 0.010 * k)
    assert d.rate_delivered == 10 * MSS
    assert d.rate_interval == pytest.approx(0.190)
    assert d.delivery_rate == pytest.approx(10 * MSS / 0.190)
    assert b.delivered == 10 * MSS
    assert b.delivery_rate() == pytest.approx(10 * MSS / 0.190)


def test_a_flight_sent_slowly_and_acked_at_once_is_limited_by_the_send_phase() -> None:
    """A segment at 0 is ACKed at 50 ms (the RTT); then the application trickles
    seven more out 20 ms apart while segment 1 is still in flight, and one
    stretch ACK covers them all at 200 ms.  The last segment's sample started
    when segment 0 (the one whose ACK preceded it) left: send phase 180 − 0 ms,
    ACK phase 200 − 50 ms.  The send phase is the longer, so the rate is over it:
    compressed ACKs must not make the path look faster than data was sent."""
    b = board()
    send(b, 0, 2, now=0.0)
    ack(b, 1, now=0.050)
    for k in range(7):
        send(b, 2 + k, 1, now=0.060 + 0.020 * k)  # the last at 180 ms
    d = ack(b, 9, now=0.200)
    assert d.rate_delivered == 8 * MSS  # since segment 8 left: segments 1..8
    assert d.rate_interval == pytest.approx(0.180)
    assert d.delivery_rate == pytest.approx(8 * MSS / 0.180)


def test_an_interval_shorter_than_the_min_rtt_gives_no_sample() -> None:
    """The path's RTT is 100 ms.  A segment sent into an empty network is resent
    10 ms later, and an ACK for it comes 50 ms after the first transmission (the
    original arrived, or the ACK was early): the interval, max(10, 50) ms, is
    shorter than any real round trip, so the ACK gives no rate sample (and the
    one reported stays the last valid one) — else it would show twice the rate."""
    b = board()
    send(b, 0, 1, now=0.0)
    first = ack(b, 1, now=0.100)
    assert first.delivery_rate == pytest.approx(MSS / 0.100)
    send(b, 1, 1, now=0.300)
    b.on_retransmitted(1 * MSS, MSS, now=0.310)
    d = ack(b, 2, now=0.350)
    assert b.delivered == 2 * MSS  # it was delivered all the same
    assert b.min_rtt == pytest.approx(0.100)  # a retransmission's RTT is ambiguous
    assert d.rate_delivered == -1
    assert d.delivery_rate == 0.0
    assert b.delivery_rate() == pytest.approx(MSS / 0.100)


def test_sacked_then_cumulatively_acked_data_is_delivered_once() -> None:
    """Segments 1-3 are SACKed at 100 ms, then the cumulative ACK covers 0-3 at
    120 ms.  The count of delivered bytes rises by 4000, not 7000, and the second
    sample is taken over segment 0 (the only range newly delivered), not over
    segment 3 again (Linux clears a SACKed skb's delivered_mstamp)."""
    b = board()
    send(b, 0, 4, now=0.0)
    sack = ack(b, 0, 0.100, (1, 4))
    assert b.delivered == 3 * MSS
    assert sack.rate_delivered == 3 * MSS
    assert sack.rate_interval == pytest.approx(0.100)
    d = ack(b, 4, now=0.120)
    assert b.delivered == 4 * MSS
    assert d.rate_delivered == 4 * MSS
    assert d.rate_interval == pytest.approx(0.120)


def test_a_sample_starts_afresh_after_the_network_empties() -> None:
    """After an idle second, a new flight's sample starts when it leaves: its
    interval is its own round trip, not the idle time since the last delivery
    (Linux ``tcp_rate_skb_sent`` restamps when nothing is in flight)."""
    b = board()
    send(b, 0, 2, now=0.0)
    ack(b, 2, now=0.100)
    send(b, 2, 4, now=1.100)
    d = ack(b, 6, now=1.200)
    assert d.rate_delivered == 4 * MSS
    assert d.rate_interval == pytest.approx(0.100)


def test_the_reported_rate_keeps_a_faster_sample_over_a_slower_app_limited_one() -> None:
    """``delivery_rate()`` (Linux ``tcpi_delivery_rate``) takes every sample that is
    not application-limited, but an application-limited one only if it shows at
    least the rate already reported: a slow writer must not make the path look
    slow."""
    b = board()
    send(b, 0, 10, now=0.0)
    ack(b, 10, now=0.100)
    fast = b.delivery_rate()
    assert fast == pytest.approx(10 * MSS / 0.100)
    b.mark_app_limited(0)  # the application had nothing more
    send(b, 10, 1, now=0.200)
    d = ack(b, 11, now=0.300)
    assert d.rate_app_limited
    assert d.delivery_rate == pytest.approx(MSS / 0.100)
    assert b.delivery_rate() == fast


# -- through the connection ---------------------------------------------------------------


def sender(**changes: object) -> Harness:
    t = established(opts(nodelay=True, **changes), mss=MSS)
    t.advance(0.05)
    return t


def test_the_application_running_out_of_data_marks_the_samples_app_limited() -> None:
    """Three segments with a window of ten: the application, not the path, limits
    the flight, so the connection marks it (Linux ``tcp_rate_check_app_limited``:
    app_limited = delivered + in flight), and the samples of what was sent then
    are flagged.  Once data sent after the bubble is delivered, the mark clears
    and a bulk flight's samples are the path's again."""
    t = sender()
    board = t.conn.recovery.board
    t.send(bytes(3 * MSS))
    assert len(t.output()) == 3
    assert board.app_limited == 3 * MSS  # delivered 0 + 3000 in flight
    t.advance(0.05)
    t.recv("A", ack=L(1 + 3 * MSS))
    assert board.delivered == 3 * MSS
    assert board.rate_app_limited  # the sample was the application's
    t.send(bytes(40 * MSS))  # more than the window: the path limits now
    out = t.output()
    assert sum(len(s.payload) for s in out) == t.conn.cc.cwnd
    t.advance(0.05)
    t.recv("A", ack=L(1 + 4 * MSS))  # the first segment after the bubble
    assert board.app_limited == 0
    t.output()
    t.advance(0.05)
    t.recv("A", ack=t.conn.snd_nxt)  # what left after the mark cleared
    assert not board.rate_app_limited


def test_a_full_window_is_not_app_limited() -> None:
    """Data left over when the window is full: the path limits, not the
    application, so nothing is marked and the samples count.  (The idle
    connection starts marked, as Linux's starts with app_limited = ~0U; the first
    delivery clears it.)"""
    t = sender()
    board = t.conn.recovery.board
    assert board.app_limited != 0
    t.send(bytes(40 * MSS))
    t.output()
    t.advance(0.05)
    t.recv("A", ack=L(1 + 2 * MSS))
    assert board.app_limited == 0
    t.output()  # the window is full again, 26 segments wait
    assert board.app_limited == 0
    t.advance(0.05)
    t.recv("A", ack=L(1 + 12 * MSS))
    assert board.rate_delivered > 0
    assert not board.rate_app_limited


def test_info_reports_the_delivery_rate() -> None:
    """``info()["delivery_rate"]`` (``ss``: ``delivery_rate``) is the last sample:
    None before any, then bytes per second."""
    t = sender()
    assert t.conn.info_dict(t.now)["delivery_rate"] is None
    t.send(bytes(10 * MSS))
    t.output()
    t.advance(0.04)
    t.recv("A", ack=L(1 + 10 * MSS))
    rate = t.conn.info_dict(t.now)["delivery_rate"]
    assert rate == pytest.approx(10 * MSS / 0.04)
