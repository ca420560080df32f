"""BBR v1 (Linux ``net/ipv4/tcp_bbr.c``): a model of the path, not a reaction to loss.

BBR estimates the bottleneck bandwidth (the largest delivery rate of the last ten
rounds) and the propagation delay (the smallest RTT of ten seconds), paces at a
gain times the bandwidth and keeps about two bandwidth-delay products in flight.
These tests show the modes on the simulator — STARTUP until the bandwidth stops
growing, DRAIN, PROBE_BW's eight-phase gain cycle, PROBE_RTT every ten seconds
without a new minimum — the estimates it reports, its speed on a lossy path where
CUBIC crawls, and, on a scripted peer, its window in loss recovery (packet
conservation, then the old window back) and after a timeout.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from aiotcp.core.congestion import bbr
from aiotcp.core.congestion.base import CA_LOSS, CA_OPEN, CA_RECOVERY
from aiotcp.core.congestion.bbr import (
    DRAIN,
    PROBE_BW,
    PROBE_RTT,
    STARTUP,
    Bbr,
    WindowedMax,
)
from aiotcp.core.connection import Connection
from aiotcp.core.options import TcpOptions
from aiotcp.core.seq import seq_sub
from aiotcp.testing.corekit import (
    LOCAL,
    LOCAL_ISS,
    REMOTE,
    SECRET,
    Harness,
    L,
    Link,
    LinkProfile,
    connected_pair,
    established,
    opts,
)

MSS = 1000
INFINITE_SSTHRESH = 1 << 30


@pytest.fixture(autouse=True)
def seeded_gain_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    """PROBE_BW starts at a random phase of its cycle (as Linux): seed it, so every
    run of these tests sees the same one."""
    monkeypatch.setattr(bbr, "_rng", random.Random(7))


# -- the windowed max filter ------------------------------------------------------------


def test_the_windowed_max_is_the_largest_recent_sample() -> None:
    w = WindowedMax()
    assert w.update(10, 0, 5.0) == 5.0
    assert w.update(10, 1, 3.0) == 5.0  # smaller: the max stays
    assert w.update(10, 2, 7.0) == 7.0  # larger: a new max at once
    assert w.get() == 7.0


def test_the_windowed_max_forgets_a_sample_older_than_the_window() -> None:
    """The bandwidth filter spans ten rounds: a burst of rate eleven rounds ago no
    longer counts, so BBR follows a path whose rate dropped."""
    w = WindowedMax()
    w.update(10, 0, 100.0)
    for t in range(1, 11):
        assert w.update(10, t, 50.0) == 100.0
    assert w.update(10, 11, 50.0) == 50.0


def test_the_second_and_third_best_move_up_as_the_best_expires() -> None:
    """Kathleen Nichols' filter keeps the best of sub-windows (a quarter and a half
    of the window): 100 at round 0, 80 at 3, 60 at 6.  When 100 expires (round 11)
    80 is the max, then 60 (round 14), then the newest sample (round 17) — without
    storing every sample (Linux ``lib/win_minmax.c``)."""
    w = WindowedMax()
    w.update(10, 0, 100.0)
    w.update(10, 3, 80.0)
    w.update(10, 6, 60.0)
    seen = {t: w.update(10, t, 10.0) for t in range(7, 18)}
    assert seen[10] == 100.0
    assert seen[11] == seen[13] == 80.0
    assert seen[14] == seen[16] == 60.0
    assert seen[17] == 10.0


def test_probe_bw_never_starts_in_the_draining_phase() -> None:
    """``bbr_reset_probe_bw_mode``: the cycle starts at a random phase, but not at
    0.75 — there is no queue to drain yet."""
    cc = Bbr(MSS)
    starts = set()
    for _ in range(200):
        cc._reset_probe_bw_mode(0.0)
        starts.add(cc.cycle_index)
    assert starts == {0, 2, 3, 4, 5, 6, 7}


# -- on the simulator ---------------------------------------------------------------------

DELAY = 0.010
BANDWIDTH = 1e6  # bytes per second on the wire: 8 Mbit/s


@dataclass
class Step:
    now: float
    mode: int
    cycle_index: int
    pacing_gain: float
    ssthresh: int
    cwnd: int
    pipe: int


def bulk(options: TcpOptions, profile: LinkProfile, seed: int = 0) -> Link:
    link = connected_pair(options, TcpOptions(), profile, seed=seed)
    link.write(False, bytes(20_000_000))
    return link


def trace(link: Link, until: float) -> Iterator[Step]:
    """The sender's BBR state after every event on the link."""
    cc = link.a.cc
    assert isinstance(cc, Bbr)
    while link.now < until and link.step(until):
        yield Step(
            link.now,
            cc.mode,
            cc.cycle_index,
            cc.pacing_gain,
            cc.ssthresh,
            cc.cwnd,
            link.a.recovery.pipe(),
        )


@pytest.fixture(scope="module")
def bulk_run() -> tuple[Link, list[Step]]:
    """2.5 s of bulk data over 20 ms RTT and 1 MB/s, with a queue that never fills."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bbr, "_rng", random.Random(7))
        link = bulk(TcpOptions(congestion="bbr"), LinkProfile(delay=DELAY, bandwidth=BANDWIDTH))
        return link, list(trace(link, 2.5))


def transitions(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        if not out or (s.mode, s.cycle_index) != (out[-1].mode, out[-1].cycle_index):
            out.append(s)
    return out


def test_startup_drain_then_probe_bw(bulk_run: tuple[Link, list[Step]]) -> None:
    """STARTUP doubles the rate each round until three rounds add less than 25 %;
    DRAIN then empties the queue that made, and PROBE_BW holds the rate — within a
    few hundred milliseconds on a 20 ms path."""
    _, steps = bulk_run
    modes = [s.mode for s in transitions(steps)]
    assert modes[:3] == [STARTUP, DRAIN, PROBE_BW]
    assert set(modes[2:]) == {PROBE_BW}
    drain_at = next(s.now for s in steps if s.mode == DRAIN)
    assert 0.1 < drain_at < 0.6


def test_the_model_matches_the_path(bulk_run: tuple[Link, list[Step]]) -> None:
    """``info()["congestion_info"]`` (``ss``'s ``bbr:(bw:…,mrtt:…)``): the bandwidth
    estimate is the bottleneck's rate (less the headers the link also carries),
    and the minimum RTT is two one-way delays plus a segment's serialization."""
    link, _ = bulk_run
    info = link.a.info_dict(link.now)
    bbr_info = info["congestion_info"]
    assert bbr_info["bbr_state"] == "PROBE_BW"
    assert 0.9 * BANDWIDTH <= bbr_info["bbr_bw"] <= 1.05 * BANDWIDTH
    assert 2 * DELAY <= bbr_info["bbr_min_rtt"] <= 2 * DELAY + 0.003
    assert bbr_info["bbr_cwnd_gain"] == 2.0
    assert info["paced"] is True
    # PROBE_BW paces at the estimate times the phase's gain, 1 % under it.
    cc = link.a.cc
    assert info["pacing_rate"] == pytest.approx(bbr_info["bbr_bw"] * cc.pacing_gain * 0.99)


def test_ssthresh_stays_infinite_until_drain(bulk_run: tuple[Link, list[Step]]) -> None:
    """BBR sets no ssthresh while it probes (Linux: TCP_INFINITE_SSTHRESH); on
    leaving STARTUP it records the estimated BDP plus the quantization budget."""
    _, steps = bulk_run
    assert {s.ssthresh for s in steps if s.mode == STARTUP} == {INFINITE_SSTHRESH}
    drained = next(s for s in steps if s.mode != STARTUP)
    bdp = BANDWIDTH * 2 * DELAY
    assert bdp < drained.ssthresh < 3 * bdp


def test_the_gain_cycle_probes_drains_then_cruises(bulk_run: tuple[Link, list[Step]]) -> None:
    """PROBE_BW cycles its pacing gain 1.25 (probe for more bandwidth), 0.75 (drain
    what that queued), then 1.0 for six phases; each phase lasts about a minimum
    RTT (the probing one until a BDP and a quarter is in flight)."""
    _, steps = bulk_run
    cycle = [s for s in transitions(steps) if s.mode == PROBE_BW]
    gains = [s.pacing_gain for s in cycle]
    first_probe = gains.index(1.25)
    assert len(gains) - first_probe >= 16  # two full cycles
    one_cycle = [1.25, 0.75] + [1.0] * 6
    assert gains[first_probe : first_probe + 16] == one_cycle * 2
    lengths = [b.now - a.now for a, b in itertools.pairwise(cycle)]
    min_rtt = 2 * DELAY
    assert all(length > min_rtt for length in lengths[first_probe:])
    assert all(length < 3 * min_rtt for length in lengths[first_probe:])


def test_probe_rtt_after_ten_seconds_without_a_new_minimum() -> None:
    """A bulk flow's RTT never drops below the one it measured first, so after ten
    seconds BBR enters PROBE_RTT: the window falls to four segments, for at least
    200 ms and a round trip, so the queue drains and the minimum is measured
    again; then PROBE_BW resumes with the window it had."""
    link = bulk(TcpOptions(congestion="bbr"), LinkProfile(delay=DELAY, bandwidth=250_000))
    steps = list(trace(link, 11.0))
    mss = link.a.mss
    probe = [s for s in steps if s.mode == PROBE_RTT]
    assert probe, "no PROBE_RTT within 11 s"
    start, end = probe[0].now, probe[-1].now
    assert 10.0 < start < 10.5
    assert max(s.cwnd for s in probe) <= 4 * mss
    after = next(s for s in steps if s.now > end)
    assert after.mode == PROBE_BW
    assert after.now - start >= 0.2
    before = [s for s in steps if s.now < start][-1]
    assert after.cwnd >= before.cwnd  # the window from before PROBE_RTT, restored
    assert len([s for s in transitions(steps) if s.mode == PROBE_RTT]) == 1


def test_random_loss_barely_slows_bbr_where_it_stops_cubic() -> None:
    """5 % random loss on a 20 ms, 1 MB/s path, both directions, same seed, two
    seconds: BBR's model ignores loss and keeps 96 % of the link (payload, so a
    little under the wire rate); CUBIC halves its window at every loss event and
    gets 27 %."""

    def goodput(congestion: str) -> float:
        profile = LinkProfile(delay=DELAY, bandwidth=BANDWIDTH, loss=0.05)
        link = bulk(TcpOptions(congestion=congestion), profile, seed=1)
        start = link.now
        link.run_for(2.0)
        return len(link.received[True]) / (link.now - start)

    bbr_rate, cubic_rate = goodput("bbr"), goodput("cubic")
    assert bbr_rate >= 0.8 * BANDWIDTH
    assert cubic_rate <= 0.4 * BANDWIDTH
    assert bbr_rate > 2.5 * cubic_rate


def test_a_slow_writer_does_not_end_startup() -> None:
    """The application writes three segments a round trip: every sample is
    application-limited and shows the same rate.  STARTUP ends only after three
    rounds without growth that the path, not the application, limited (Linux
    ``bbr_check_full_bw_reached`` skips app-limited samples), so BBR is still
    ready to probe when the application speeds up."""
    t = established(opts(nodelay=True, congestion="bbr"), mss=MSS)
    t.advance(0.04)
    cc = t.conn.cc
    assert isinstance(cc, Bbr)
    for _ in range(10):
        t.send(bytes(3 * MSS))
        assert len(t.output()) == 3
        t.advance(0.04)
        t.recv("A", ack=t.conn.snd_max)
        assert t.conn.recovery.board.rate_app_limited
    assert cc.rounds >= 10
    assert cc.mode == STARTUP
    assert not cc.full_bw_reached
    assert cc.bandwidth() == pytest.approx(3 * MSS / 0.04)


# -- the window in loss recovery and after a timeout --------------------------------------


def bbr_sender() -> Harness:
    """A BBR sender (unpaced, so each ACK's worth goes at once) with twenty
    segments in flight after its first round: 40 ms RTT, 200 segments to send."""
    t = established(
        opts(nodelay=True, congestion="bbr", pacing=False), mss=MSS, sack_permitted=True
    )
    t.advance(0.04)
    t.send(bytes(200 * MSS))
    assert len(t.output()) == 10
    t.advance(0.04)
    for k in range(1, 11):
        t.recv("A", ack=L(1 + k * MSS))
    assert sum(len(s.payload) for s in t.output()) == 20 * MSS
    assert t.conn.cc.cwnd == 20 * MSS
    t.advance(0.04)
    return t


def sack(t: Harness, lo: int, hi: int, *, una: int) -> None:
    """The peer acknowledges below segment ``una`` and SACKs segments ``lo..hi-1``."""
    t.recv("A", ack=L(1 + una * MSS), sack_blocks=((L(1 + lo * MSS), L(1 + hi * MSS)),))


def test_recovery_starts_with_packet_conservation() -> None:
    """Segment 10 is lost; the SACK of 11 starts recovery.  BBR saves the window it
    had and, for the first round, sends one segment per segment delivered (Linux
    ``bbr_set_cwnd_to_recover_or_restore``: cwnd = in flight + acked), instead of
    PRR's reduction: here 18 still in flight + 1 delivered."""
    t = bbr_sender()
    cc = t.conn.cc
    assert isinstance(cc, Bbr)
    sack(t, 11, 12, una=10)
    rec = t.conn.recovery
    assert rec.ca_state == CA_RECOVERY
    assert cc.prior_cwnd == 20 * MSS
    assert cc.packet_conservation
    assert rec.pipe() == 18 * MSS
    assert cc.cwnd == rec.pipe() + MSS
    for hi in range(13, 16):  # each SACK lets exactly what it delivered go out
        sack(t, 11, hi, una=10)
        assert cc.cwnd == 19 * MSS
    assert cc.ssthresh == INFINITE_SSTHRESH


def sack_all_but_the_first(t: Harness) -> None:
    """Segment 10 of the twenty in flight (10-29) is lost: the peer SACKs 11-29 as
    they arrive.  The first SACK starts recovery; the sender resends 10."""
    for hi in range(12, 31):
        sack(t, 11, hi, una=10)
    assert t.conn.recovery.in_recovery
    t.output()
    t.advance(0.04)


def test_the_window_from_before_recovery_comes_back_after_it() -> None:
    """When the ACK reaches the recovery point, the window saved on entry returns
    (at least; BBR then grows it toward its target)."""
    t = bbr_sender()
    cc = t.conn.cc
    sack_all_but_the_first(t)
    assert cc.cwnd < 20 * MSS
    t.recv("A", ack=L(1 + 30 * MSS))  # the retransmission arrived
    assert t.conn.recovery.ca_state == CA_OPEN
    assert not t.conn.recovery.in_recovery
    assert cc.cwnd >= 20 * MSS
    assert not cc.packet_conservation


def test_a_cumulative_ack_of_sacked_data_grows_the_window_only_by_what_is_new() -> None:
    """Segments 11-29 were SACKed; the ACK for 30 newly delivers only segment 10
    (resent): 1000 bytes.  Leaving recovery, BBR's window is the saved one (20
    segments) grown by at most that — Linux ``bbr_main`` passes
    ``rs->acked_sacked`` (tp->delivered − prior_delivered, which counts a SACKed
    segment once, when SACKed) — not by the 20000 bytes the ACK covers, which
    would double the window in one ACK."""
    t = bbr_sender()
    cc = t.conn.cc
    board = t.conn.recovery.board
    sack_all_but_the_first(t)
    delivered = board.delivered
    t.recv("A", ack=L(1 + 30 * MSS))
    assert board.delivered - delivered == MSS
    assert t.conn.recovery.ca_state == CA_OPEN
    assert cc.cwnd <= 20 * MSS + MSS


def test_a_timeout_cuts_the_window_to_one_segment_and_leaving_loss_restores_it() -> None:
    """An RTO (Linux ``tcp_enter_loss``): cwnd one segment, the model kept and the
    window saved (``bbr_ssthresh``); in the Loss state BBR slow-starts from the
    four-segment floor; once everything sent before the timeout is acknowledged,
    the saved window is back."""
    t = bbr_sender()
    cc = t.conn.cc
    assert isinstance(cc, Bbr)
    bw = cc.bandwidth()
    t.advance(0.5)  # nothing is acknowledged: the RTO fires
    assert t.conn.counters.rto_expirations >= 1
    assert t.conn.recovery.ca_state == CA_LOSS
    assert cc.cwnd == MSS
    assert cc.prior_cwnd == 20 * MSS
    assert cc.bandwidth() == bw  # the model survives a timeout
    t.output()
    t.recv("A", ack=L(1 + 11 * MSS))
    assert t.conn.recovery.ca_state == CA_LOSS
    assert cc.cwnd == 4 * MSS  # Linux's bbr_cwnd_min_target
    t.output()
    t.recv("A", ack=t.conn.snd_max)
    assert t.conn.recovery.ca_state == CA_OPEN
    assert cc.cwnd >= 20 * MSS


# -- the clock a connection starts at ------------------------------------------------------


def test_a_connection_opened_late_does_not_start_in_probe_rtt() -> None:
    """The runtime's clock is monotonic time, far past ten seconds.  A client that
    queued its data before the handshake finished sends a full initial window; the
    first ACK must leave BBR in STARTUP (its min-RTT filter is fresh: Linux stamps
    it when BBR is initialised), not cut the window to four segments."""
    t0 = 1000.0
    conn = Connection(
        LOCAL, REMOTE, opts(nodelay=True, congestion="bbr"), SECRET, t0, iss=LOCAL_ISS
    )
    t = Harness(conn, t0)
    conn.connect(t.now)
    t.expect("S")
    t.send(bytes(100 * MSS))
    t.advance(0.02)
    t.recv("SA", ack=L(1), mss=MSS)
    assert len(t.output()) == 10
    t.advance(0.02)
    t.recv("A", ack=L(1 + 2 * MSS))
    assert seq_sub(conn.snd_una, L(1)) == 2 * MSS
    assert conn.info_dict(t.now)["congestion_info"]["bbr_state"] == "STARTUP"
    assert conn.cc.cwnd > 4 * MSS


def test_switching_to_bbr_mid_transfer_does_not_start_in_probe_rtt() -> None:
    """``set_option("congestion", "bbr")`` fifteen seconds into a connection, with
    data in flight: the new BBR starts its ten-second min-RTT window now, so the
    next ACK leaves it in STARTUP, not in PROBE_RTT with four segments."""
    t = established(opts(nodelay=True), mss=MSS)
    t.advance(15.0)
    t.send(bytes(100 * MSS))
    assert len(t.output()) == 10
    t.advance(0.02)
    t.recv("A", ack=L(1 + 2 * MSS))
    t.output()
    t.conn.set_option("congestion", "bbr", t.now)
    t.advance(0.02)
    t.recv("A", ack=L(1 + 4 * MSS))
    assert t.conn.info_dict(t.now)["congestion_info"]["bbr_state"] == "STARTUP"
    assert t.conn.cc.cwnd > 4 * MSS
