"""CUBIC against RFC 9438's formulas (window in segments, MSS 1000 for round numbers)."""

from __future__ import annotations

import itertools

import pytest

from aiotcp.core.congestion import create
from aiotcp.core.congestion.cubic import ALPHA, BETA, C, Cubic
from aiotcp.core.options import TcpOptions
from aiotcp.core.rto import RttEstimator
from aiotcp.testing.corekit import LinkProfile, connected_pair

MSS = 1000
RTT = 0.1


def cubic_at(w_segments: int) -> Cubic:
    cc = create("cubic", MSS)
    assert isinstance(cc, Cubic)
    cc.rtt = RttEstimator(1.0, 0.2, 60.0)
    cc.rtt.sample(RTT)
    cc.cwnd = w_segments * MSS
    cc.ssthresh = 1 << 30
    return cc


def run_rtts(
    cc: Cubic, start: float, rtts: int, per_rtt_acks: int = 10
) -> list[tuple[float, float]]:
    """ACK one window per RTT in ``per_rtt_acks`` pieces; returns (t, cwnd in segments)."""
    out, now = [], start
    for _ in range(rtts):
        chunk = cc.cwnd // per_rtt_acks
        for _ in range(per_rtt_acks):
            now += RTT / per_rtt_acks
            cc.on_ack(chunk, cc.cwnd, now)
        out.append((now - start, cc.cwnd / MSS))
    return out


def loss_then_recover(cc: Cubic, now: float) -> None:
    cc.on_enter_recovery(cc.cwnd, now)
    cc.on_exit_recovery(cc.cwnd)


def test_default_algorithm_names() -> None:
    assert create("cubic", MSS).name == "cubic"
    assert TcpOptions(congestion="cubic").congestion == "cubic"


def test_multiplicative_decrease_is_beta_0_7() -> None:
    """RFC 9438 §4.6: ssthresh = cwnd * beta_cubic; W_max = cwnd at the loss."""
    cc = cubic_at(100)
    loss_then_recover(cc, 0.0)
    assert cc.ssthresh == int(100 * MSS * BETA)
    assert cc.cwnd == cc.ssthresh
    assert cc.w_max == pytest.approx(100)


def test_k_matches_equation_2() -> None:
    """K = cubic_root(W_max * (1 - beta) / C) when the epoch starts at beta * W_max."""
    cc = cubic_at(100)
    loss_then_recover(cc, 0.0)
    cc.on_ack(MSS, cc.cwnd, 0.001)  # first ACK in congestion avoidance starts the epoch
    assert cc.k == pytest.approx((100 * (1 - BETA) / C) ** (1 / 3), rel=1e-3)


def test_window_follows_the_cubic_curve_and_plateaus_at_w_max() -> None:
    """Concave up to W_max at t = K, convex beyond it (RFC 9438 §4.2, Figure 1)."""
    cc = cubic_at(200)
    loss_then_recover(cc, 0.0)
    curve = run_rtts(cc, 0.0, 120)
    k = (200 * (1 - BETA) / C) ** (1 / 3)  # ~5.3 s
    for t, w in curve:
        expected = C * (t + RTT - k) ** 3 + 200  # the target is one RTT ahead
        if 0.5 < t < 2 * k:
            assert w == pytest.approx(expected, rel=0.05), f"t={t:.1f}s"
    near_k = [w for t, w in curve if abs(t - k) < 0.3]
    assert all(199 <= w <= 202 for w in near_k)  # the plateau around W_max
    growth = [(b[0], b[1] - a[1]) for a, b in itertools.pairwise(curve)]
    flat = max(g for t, g in growth if abs(t - k) < 0.5)
    assert flat < growth[0][1] / 5  # concave: slowing down towards W_max
    assert growth[-1][1] > 5 * flat  # convex: probing beyond W_max speeds up again


def test_reno_friendly_region_for_short_rtts() -> None:
    """§4.3: on a 1 ms path the Reno-friendly estimate (ALPHA segments per RTT) grows
    faster than W_cubic, and cwnd follows W_est."""
    cc = cubic_at(100)
    cc.rtt = RttEstimator(1.0, 0.001, 60.0)
    cc.rtt.sample(0.001)
    loss_then_recover(cc, 0.0)
    now = 0.0
    for _ in range(100):  # 100 RTTs of 1 ms, one ACK per window
        now += 0.001
        cc.on_ack(cc.cwnd, cc.cwnd, now)
    w_est = 70 + 100 * ALPHA
    assert cc.cwnd / MSS == pytest.approx(w_est, rel=0.1)
    assert cc.cwnd / MSS > 1.3 * cc.w_cubic(now + 0.001)


def test_fast_convergence_lowers_w_max() -> None:
    """§4.7: a loss below the previous W_max sets W_max = cwnd * (1 + beta) / 2."""
    cc = cubic_at(100)
    loss_then_recover(cc, 0.0)
    cc.cwnd = 80 * MSS
    loss_then_recover(cc, 1.0)
    assert cc.w_max == pytest.approx(80 * (1 + BETA) / 2)


def test_timeout_is_reno_with_beta_cubic() -> None:
    """§4.8: cwnd = 1 SMSS, ssthresh = beta_cubic * cwnd."""
    cc = cubic_at(50)
    cc.on_timeout(cc.cwnd, 0.0)
    assert cc.cwnd == MSS
    assert cc.ssthresh == int(50 * MSS * BETA)


def test_slow_start_doubles_per_rtt_as_reno() -> None:
    """§4.10: below ssthresh CUBIC uses standard slow start."""
    cc = create("cubic", MSS)
    start = cc.cwnd
    cc.on_ack(cc.cwnd, cc.cwnd, 0.1)
    assert cc.cwnd == 2 * start


@pytest.mark.parametrize("seed", [1, 2])
def test_cubic_transfer_over_a_lossy_link_is_byte_exact(seed: int) -> None:
    opts = TcpOptions(congestion="cubic")
    link = connected_pair(opts, opts, LinkProfile(delay=0.01, loss=0.02), seed=seed)
    data = bytes(range(256)) * 2048  # 512 KiB
    link.write(False, data)
    link.run_until(lambda: len(link.received[True]) >= len(data), timeout=600)
    assert bytes(link.received[True]) == data
    assert link.a.cc.name == "cubic"
