"""Pacing: a round trip's data spread over it at the pacing rate, as Linux's
internal TCP pacing does (``tcp_update_skb_after_send``, ``tcp_tso_autosize``).

Instead of sending each ACK's worth (or a whole window) at once, a paced sender
sends frames of about a millisecond of its rate (at least two segments; the whole
GSO size on a LAN, where pacing gains nothing) and holds the next one until the
departure clock allows it, waking on the PACING timer.  The first ten segments
are not paced.  BBR paces by default (its windows assume it); NewReno and CUBIC
do not unless ``TcpOptions.pacing`` says so.  At a shallow bottleneck queue the
bursts pacing avoids are the difference between a few drops and thousands.
"""

from __future__ import annotations

import random

import pytest

from aiotcp.core.congestion import bbr
from aiotcp.core.options import TcpOptions
from aiotcp.core.segment import Segment
from aiotcp.core.timers import TimerName
from aiotcp.testing.corekit import Harness, L, LinkProfile, connected_pair, opts, syn_sent

MSS = 1000
GSO = 64 * MSS


@pytest.fixture(autouse=True)
def seeded_gain_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """BBR's PROBE_BW starts at a random phase: seed it for repeatable runs."""
    monkeypatch.setattr(bbr, "_rng", random.Random(7))


def sender(rtt: float, **changes: object) -> Harness:
    """A connection with GSO (so a frame can hold many segments) whose handshake took
    ``rtt``, with 1000 segments to send."""
    t = syn_sent(opts(nodelay=True, **changes))
    t.advance(rtt)
    t.recv("SA", ack=L(1), mss=MSS, sack_permitted=True)
    t.expect("A")
    t.conn.gso_max = GSO
    t.send(bytes(1000 * MSS))
    return t


def first_round(t: Harness, rtt: float) -> list[Segment]:
    """The initial window goes; one RTT later it is all acknowledged."""
    first = t.output()
    t.advance(rtt)
    t.recv("A", ack=L(1 + 10 * MSS))
    return first


def departures(t: Harness, horizon: float) -> list[tuple[float, int]]:
    """(time, bytes) of every frame sent from now until ``horizon`` seconds later,
    waking only when the connection asks to (its PACING timer); no ACKs arrive."""
    end = t.now + horizon
    frames: list[tuple[float, int]] = []
    while True:
        frames.extend((t.now, len(s.payload)) for s in t.output())
        deadline = t.conn.next_deadline()
        if TimerName.PACING not in t.conn.timers or deadline is None or deadline > end:
            return frames
        assert deadline == t.conn.timers.get(TimerName.PACING)
        t.advance(deadline - t.now)


def test_bbr_sends_the_first_ten_segments_at_once_then_paces() -> None:
    """100 ms RTT: the initial window leaves at once (Linux, like fq, does not pace
    the first ten), in frames sized from the initial pacing rate (2.89 × 10
    segments over the handshake's RTT: two segments).  After the first ACK BBR's
    pacing rate is
    about 2.89 × 10 segments / 100 ms; frames are then two segments (a millisecond
    of that rate is less), one every 2000 bytes / rate, each waiting on the
    PACING timer, so the window that would have gone at once spreads over ~60 ms."""
    rtt = 0.1
    t = sender(rtt, congestion="bbr")
    assert [len(s.payload) for s in first_round(t, rtt)] == [2 * MSS] * 5
    rate = t.conn.cc.pacing_rate
    assert rate is not None
    assert 250_000 < rate < 300_000
    frames = departures(t, rtt)
    sizes = [n for _, n in frames]
    assert sum(sizes) == t.conn.cc.cwnd == 20 * MSS  # cwnd-limited in the end
    assert max(sizes) == 2 * MSS
    times = [at for at, _ in frames]
    assert len(set(times)) == len(times)  # each frame at its own time
    # After the first frame (which leaves at once) the departures follow the
    # clock: the bytes sent over the span, over the span, is the pacing rate.
    sent = sum(sizes[1:-1])
    assert sent / (times[-1] - times[1]) == pytest.approx(rate, rel=0.02)
    assert times[-1] - times[0] > 0.055


def test_the_pacing_timer_wakes_the_flush() -> None:
    """Between frames nothing leaves, and the next deadline is the PACING timer,
    set up to a millisecond (``PACING_SLACK``) before the departure clock."""
    t = sender(0.1, congestion="bbr")
    first_round(t, 0.1)
    assert len(t.output()) == 1
    due = t.conn.timers.get(TimerName.PACING)
    assert due is not None and t.now < due < t.now + 0.01
    assert t.conn.next_deadline() == due
    t.advance((due - t.now) / 2)
    t.expect_nothing()
    t.advance(due - t.now)
    assert len(t.output()) == 1


@pytest.mark.parametrize(
    ("rate", "min_rtt", "segments"),
    [
        (1_000_000, 0.020, 2),  # 976 bytes a millisecond: the two-segment minimum
        (20_000_000, 0.020, 19),  # 19531 bytes: whole segments of it
        (1_000_000, 0.0015, 16),  # + 64000 >> 2 for 1.5 ms (2 × 512 µs)
        (1_000_000, 0.0003, 64),  # under 512 µs: the full GSO size
        (200_000_000, 0.020, 64),  # never more than GSO takes
    ],
)
def test_frames_hold_about_a_millisecond_of_the_rate(
    rate: float, min_rtt: float, segments: int
) -> None:
    """Linux ``tcp_tso_autosize``: rate >> 10 bytes (about 1 ms of it), plus the
    GSO size halved for every 512 µs of minimum RTT (``tcp_tso_rtt_log`` = 9), at
    most the GSO size, in whole segments, at least ``tcp_min_tso_segs`` (2)."""
    t = sender(0.02, congestion="cubic", pacing=True)
    t.conn._pace_rate = rate
    t.conn.recovery.board.min_rtt = min_rtt
    assert t.conn._autosized_frame(GSO) == segments * MSS


def test_bbr_sends_single_segment_frames_below_1_2_mbit() -> None:
    """Below 1.2 Mbit/s of pacing rate BBR wants one segment per frame
    (``bbr_min_tso_segs``); CUBIC, paced at a like rate, keeps Linux's two."""
    rtt = 0.5  # 10 segments a half second: ~57 kB/s at the startup gain
    t = sender(rtt, congestion="bbr")
    first_round(t, rtt)
    assert (t.conn.cc.pacing_rate or 0) < 150_000
    assert {n for _, n in departures(t, 0.2)} == {MSS}
    c = sender(rtt, congestion="cubic", pacing=True)
    first_round(c, rtt)
    assert {n for _, n in departures(c, 0.2)} == {2 * MSS}


def test_bbr_with_pacing_off_sends_the_window_at_once() -> None:
    """``pacing=False`` overrides the algorithm: the window's room goes out at once,
    with no PACING timer — in frames sized by the rate all the same, as Linux
    sizes its TSO frames whether or not anything paces them."""
    t = sender(0.1, congestion="bbr", pacing=False)
    first_round(t, 0.1)
    frames = [len(s.payload) for s in t.output()]
    assert sum(frames) == 20 * MSS and len(frames) > 1
    assert TimerName.PACING not in t.conn.timers
    assert t.conn.info_dict(t.now)["paced"] is False


def test_cubic_does_not_pace_unless_asked() -> None:
    """Linux's CUBIC without the fq qdisc sends each ACK's worth at once; it
    reports a pacing rate but does not enforce it.  ``pacing=True`` turns it on."""
    t = sender(0.1, congestion="cubic")
    first_round(t, 0.1)
    assert t.conn.info_dict(t.now)["paced"] is False
    assert t.conn.info_dict(t.now)["pacing_rate"]
    assert sum(len(s.payload) for s in t.output()) == 20 * MSS  # all of it, now
    assert TimerName.PACING not in t.conn.timers
    p = sender(0.1, congestion="cubic", pacing=True)
    first_round(p, 0.1)
    assert p.conn.info_dict(p.now)["paced"] is True
    frames = departures(p, 0.1)
    assert sum(n for _, n in frames) == 20 * MSS
    assert len(frames) == 10


@pytest.mark.parametrize(("rtt", "segments"), [(0.1, 2), (0.0002, 64)])
def test_unpaced_frames_are_sized_by_the_rate_too(rtt: float, segments: int) -> None:
    """Linux sizes TSO frames from ``sk_pacing_rate`` whether or not anything paces
    them: CUBIC without pacing sends its window at once, in frames of about a
    millisecond of its rate on a long path (two segments here) and whole GSO
    frames on a LAN."""
    t = sender(rtt, congestion="cubic")
    first_round(t, rtt)
    frames = [len(s.payload) for s in t.output()]
    assert TimerName.PACING not in t.conn.timers
    assert sum(frames) == 20 * MSS
    assert max(frames) == min(segments * MSS, 20 * MSS)


def test_with_a_large_initial_window_only_the_first_ten_segments_go_unpaced() -> None:
    """An initial window of 40 segments: Linux lets the first frames go until ten
    segments are out, then the departure clock holds the rest (its 40-segment
    window spreads over the first round trip) — an initial window is not a
    licence to burst."""
    t = sender(0.1, congestion="bbr", initial_window=40)
    first = sum(len(s.payload) for s in t.output())
    assert first < 20 * MSS
    assert TimerName.PACING in t.conn.timers


def test_pacing_avoids_the_drops_of_a_shallow_bottleneck_queue() -> None:
    """A 1 MB/s bottleneck with room for 15 packets, 20 ms RTT, one second of
    bulk data.  Paced, BBR's flow meets the queue at its rate: 54 drops, all
    STARTUP's overshoot).  Unpaced, every ACK releases a burst into a window of two
    BDPs and the queue overflows all the time (877 drops); BBR does not back
    off for loss, so only pacing keeps it off the tail of the queue."""

    def drops(pacing: bool | None) -> int:
        profile = LinkProfile(delay=0.010, bandwidth=1e6, queue_limit=15 * 1500)
        link = connected_pair(TcpOptions(congestion="bbr", pacing=pacing), TcpOptions(), profile)
        link.write(False, bytes(5_000_000))
        link.run_for(1.0)
        assert len(link.received[True]) > 800_000  # both keep the link busy
        return link.queue_drops

    paced, unpaced = drops(None), drops(False)
    assert paced < 100
    assert unpaced > 5 * paced
