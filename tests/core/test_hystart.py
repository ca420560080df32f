"""HyStart++ (RFC 9406): slow start ends when the RTT grows, before the queue overflows."""

from __future__ import annotations

import pytest

from aiotcp.core import congestion
from aiotcp.core.congestion.base import CongestionControl
from aiotcp.core.congestion.hystart import CSS_ROUNDS, N_RTT_SAMPLE, HyStartPlusPlus
from aiotcp.core.options import TcpOptions
from aiotcp.testing.corekit import LinkProfile, connected_pair, opts

MSS = 1000


class Rounds:
    """Drives an algorithm through slow-start rounds as RFC 9406 §4.2 counts them: a
    round begins with the ACK that reaches SND.NXT as it was when the previous round
    began, and lasts until the data sent since then is acknowledged."""

    def __init__(self, cc: CongestionControl) -> None:
        self.cc = cc
        self.una = 0
        self.end = MSS  # SND.NXT when the current round began

    def round(self, rtt: float, acks: int = N_RTT_SAMPLE) -> None:
        """``acks`` evenly spaced ACKs, all measuring ``rtt``: the first reaches the
        previous round's end, the others cover what the window sent since."""
        start = self.end
        self.end = start + self.cc.cwnd  # sent this round: a window's worth
        step = (self.end - start) // acks
        for i in range(acks):
            ack = start + i * step
            acked, self.una = ack - self.una, ack
            self.cc.on_ack_sample(ack, self.end, rtt, 0.0)
            self.cc.on_ack(acked, self.cc.cwnd, 0.0)

    @property
    def hystart(self) -> HyStartPlusPlus:
        hs = getattr(self.cc, "hystart", None)
        assert isinstance(hs, HyStartPlusPlus)
        return hs


@pytest.fixture(params=["newreno", "cubic"])
def rounds(request: pytest.FixtureRequest) -> Rounds:
    return Rounds(congestion.create(request.param, MSS))


def test_a_clear_rtt_rise_enters_css_and_css_ends_in_congestion_avoidance(rounds: Rounds) -> None:
    """100 ms, then 120 ms: more than 100 + max(4, min(100 / 8, 16)) = 112.5 ms.  In
    CSS the window grows a quarter as fast; after CSS_ROUNDS, ssthresh = cwnd."""
    rounds.round(0.100)
    rounds.round(0.100)
    assert not rounds.hystart.in_css
    rounds.round(0.120)
    assert rounds.hystart.in_css
    before = rounds.cc.cwnd
    rounds.round(0.120)  # CSS round 1: a quarter of slow start's growth
    assert rounds.cc.cwnd - before < 0.3 * before
    for _ in range(CSS_ROUNDS - 2):
        rounds.round(0.120)
    assert rounds.cc.ssthresh > 1 << 29  # still slow start, conservatively
    rounds.round(0.120)  # its first ACK ends CSS: ssthresh = cwnd, then avoidance
    assert rounds.cc.ssthresh <= rounds.cc.cwnd < 1.05 * rounds.cc.ssthresh
    assert not rounds.hystart.active


def test_a_small_rtt_rise_is_not_a_queue(rounds: Rounds) -> None:
    rounds.round(0.100)
    rounds.round(0.110)  # below the 12.5 ms threshold
    rounds.round(0.112)
    assert not rounds.hystart.in_css


def test_the_threshold_is_at_least_4_and_at_most_16_ms(rounds: Rounds) -> None:
    """lastRoundMinRTT / 8 clamped to [MIN_RTT_THRESH, MAX_RTT_THRESH]."""
    rounds.round(0.010)
    rounds.round(0.0135)  # +3.5 ms: below the 4 ms floor (10 / 8 = 1.25 ms)
    assert not rounds.hystart.in_css
    rounds.round(0.0180)  # +4.5 ms over 13.5: above the floor (13.5 / 8 < 4)
    assert rounds.hystart.in_css
    slow = Rounds(congestion.create("cubic", MSS))
    slow.round(0.400)
    slow.round(0.415)  # 400 / 8 = 50 ms, clamped to 16: +15 ms is not enough
    assert not slow.hystart.in_css
    slow.round(0.432)  # +17 ms over 415
    assert slow.hystart.in_css


def test_too_few_samples_in_a_round_decide_nothing(rounds: Rounds) -> None:
    rounds.round(0.100)
    rounds.round(0.200, acks=N_RTT_SAMPLE - 1)
    assert not rounds.hystart.in_css


def test_an_rtt_back_below_the_css_baseline_resumes_slow_start(rounds: Rounds) -> None:
    """RFC 9406 §4.2: the rise was jitter."""
    rounds.round(0.100)
    rounds.round(0.120)
    assert rounds.hystart.in_css
    rounds.round(0.105)  # below the 120 ms baseline
    assert not rounds.hystart.in_css and rounds.hystart.active
    before = rounds.cc.cwnd
    rounds.round(0.105)
    assert rounds.cc.cwnd - before > 0.8 * before  # slow start's doubling again


def test_a_loss_ends_hystart_for_good(rounds: Rounds) -> None:
    rounds.round(0.100)
    rounds.cc.on_enter_recovery(rounds.cc.cwnd, 0.0)
    rounds.cc.on_exit_recovery(rounds.cc.cwnd)
    assert not rounds.hystart.active


def test_standard_slow_start_is_an_option() -> None:
    cc = congestion.create("cubic", MSS, slow_start="standard")
    assert getattr(cc, "hystart", None) is None
    with pytest.raises(ValueError, match="slow_start"):
        TcpOptions().replace(slow_start="fast")


@pytest.mark.parametrize("algorithm", ["newreno", "cubic"])
def test_hystart_avoids_slow_starts_overshoot_at_a_bottleneck(algorithm: str) -> None:
    """2 MiB through 10 Mbit/s, 20 ms RTT, a 100 KB drop-tail queue (80 ms of it):
    standard slow start doubles into the full queue and loses a burst (measured: 109
    retransmissions with NewReno, 252 with CUBIC); HyStart++ sees the queue's delay
    first (22 and 24, the later ones from congestion avoidance probing), and the
    transfer takes no longer (1.76 s against 1.79)."""
    data = bytes(range(256)) * 8192
    path = LinkProfile(delay=0.01, bandwidth=1.25e6, queue_limit=100_000)
    retransmits, seconds = {}, {}
    for kind in ("standard", "hystart++"):
        o = opts(congestion=algorithm, slow_start=kind, recv_buffer=4 << 20, window_scaling=True)
        link = connected_pair(o, o, path, seed=1)
        link.write(False, data)
        link.run_until(lambda link=link: len(link.received[True]) >= len(data), timeout=600)
        assert bytes(link.received[True]) == data
        retransmits[kind], seconds[kind] = link.a.counters.retransmits, link.now
    assert retransmits["hystart++"] < 0.4 * retransmits["standard"], retransmits
    assert seconds["hystart++"] <= 1.02 * seconds["standard"], seconds


# -- Linux's HyStart (tcp_cubic.c), an option --------------------------------------


def linux_rounds() -> Rounds:
    return Rounds(congestion.create("cubic", MSS, slow_start="hystart"))


def test_linux_hystart_leaves_slow_start_on_a_delay_rise() -> None:
    """Once the window has 16 segments: a round's RTT (the least of its first 8
    samples) above the minimum by more than max(4 ms, min(min/8, 16 ms))."""
    r = linux_rounds()
    r.round(0.100, acks=12)
    r.round(0.100, acks=12)  # 10 -> 34 segments: past the 16 of the low window
    assert r.cc.ssthresh > 1 << 29
    r.round(0.111, acks=12)  # +11 ms: below 12.5 ms
    assert r.cc.ssthresh > 1 << 29
    r.round(0.113, acks=12)  # +13 ms
    assert r.cc.ssthresh <= r.cc.cwnd < 1.1 * r.cc.ssthresh


def test_linux_hystart_leaves_slow_start_when_the_ack_train_spans_half_the_rtt() -> None:
    """ACKs 1 ms apart (a train) for longer than half the 20 ms minimum RTT: the
    window already fills the path."""
    cc = congestion.create("cubic", MSS, slow_start="hystart")
    cc.cwnd = 20 * MSS
    una, end, now = 0, 20 * MSS, 1.0
    for i in range(20):
        una += MSS
        cc.on_ack_sample(una, end, 0.020, now + i * 0.001)
        cc.on_ack(MSS, cc.cwnd, now + i * 0.001)
        if cc.ssthresh < 1 << 29:
            break
    assert 10 <= i <= 12, i  # after 10 ms of train (half of 20 ms), not before


def test_linux_hystart_waits_for_a_window_of_16_segments() -> None:
    r = linux_rounds()
    r.round(0.100, acks=4)  # 10 -> 14 segments
    r.round(0.200, acks=1)  # a huge rise, but too small a window to judge
    assert r.cc.ssthresh > 1 << 29


def test_linux_hystart_also_avoids_the_overshoot_at_a_bottleneck() -> None:
    """The same path: no retransmission at all (its ACK train ends slow start early)."""
    data = bytes(range(256)) * 8192
    path = LinkProfile(delay=0.01, bandwidth=1.25e6, queue_limit=100_000)
    retransmits = {}
    for kind in ("standard", "hystart"):
        o = opts(congestion="cubic", slow_start=kind, recv_buffer=4 << 20, window_scaling=True)
        link = connected_pair(o, o, path, seed=1)
        link.write(False, data)
        link.run_until(lambda link=link: len(link.received[True]) >= len(data), timeout=600)
        assert bytes(link.received[True]) == data
        retransmits[kind] = link.a.counters.retransmits
    assert retransmits["hystart"] < 0.4 * retransmits["standard"], retransmits
