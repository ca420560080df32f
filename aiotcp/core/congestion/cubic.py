"""CUBIC congestion control (RFC 9438), Linux's default.

The window grows as a cubic function of the time since the last congestion
event, centred on the window where that loss happened (W_max): fast far from
it, flat near it, probing beyond it.  Loss recovery itself (fast retransmit,
NewReno partial ACKs, RTO) stays the connection's; CUBIC changes how far the
window falls (beta 0.7 instead of 0.5) and how it grows in congestion avoidance.
Windows in the RFC's equations are in segments; ``cwnd`` here stays in bytes.
"""

from __future__ import annotations

from typing import Final

from aiotcp.core.congestion.base import mypyc_attr, register
from aiotcp.core.congestion.newreno import NewReno

C: Final = 0.4  # RFC 9438 §5.1
BETA: Final = 0.7  # RFC 9438 §4.6
ALPHA: Final = 3 * (1 - BETA) / (1 + BETA)  # RFC 9438 §4.3, Reno-friendly additive increase


@mypyc_attr(allow_interpreted_subclasses=True)
class Cubic(NewReno):
    name = "cubic"

    def __init__(self, mss: int, initial_window: int = 10) -> None:
        super().__init__(mss, initial_window)
        self.w_max = 0.0  # segments, at the last congestion event
        self.k = 0.0  # seconds until W_cubic reaches w_max again
        self.epoch_start: float | None = None
        self.w_est = 0.0  # segments, the Reno-friendly estimate (§4.3)
        self.cwnd_epoch = 0.0  # segments, cwnd when the epoch started

    # -- RFC 9438 §4.2: the cubic window function -----------------------------------
    def w_cubic(self, t: float) -> float:
        """W_cubic(t) = C*(t-K)^3 + W_max, in segments (equation 1)."""
        return C * (t - self.k) ** 3 + self.w_max

    def _start_epoch(self, now: float) -> None:
        self.epoch_start = now
        self.cwnd_epoch = self.cwnd / self.mss
        w_max = max(self.w_max, self.cwnd_epoch)
        # Equation 2: K = cubic_root((W_max - cwnd_epoch) / C).
        self.k = ((w_max - self.cwnd_epoch) / C) ** (1 / 3)
        self.w_max = w_max
        self.w_est = self.cwnd_epoch

    def on_ack(self, acked: int, flight_size: int, now: float) -> None:
        if self.cwnd < self.ssthresh:
            super().on_ack(acked, flight_size, now)  # slow start, as Reno (§4.10)
            return
        if self.epoch_start is None:
            self._start_epoch(now)
        assert self.epoch_start is not None
        segs = self.cwnd / self.mss
        # §4.3: the Reno-friendly region, W_est grows ALPHA segments per cwnd acked.
        self.w_est += ALPHA * (acked / self.mss) / segs
        t = now - self.epoch_start
        rtt = self.rtt.srtt if self.rtt is not None and self.rtt.srtt else 0.0
        if self.w_cubic(t) < self.w_est:
            target = self.w_est
        else:
            # §4.4/4.5: aim at W_cubic one RTT ahead, growing at most 50 % per RTT.
            target = min(max(self.w_cubic(t + rtt), segs), 1.5 * segs)
        grow = (target - segs) / segs * (acked / self.mss)
        self.cwnd = max(self.cwnd + int(grow * self.mss), 2 * self.mss)

    def _reduce(self, now: float) -> None:
        """§4.6 multiplicative decrease with §4.7 fast convergence."""
        segs = self.cwnd / self.mss
        if segs < self.w_max:  # the network's capacity shrank: release bandwidth sooner
            self.w_max = segs * (1 + BETA) / 2
        else:
            self.w_max = segs
        self.ssthresh = max(int(self.cwnd * BETA), 2 * self.mss)
        self.epoch_start = None

    def undo_state(self) -> tuple[int, int, float]:
        return (self.cwnd, self.ssthresh, self.w_max)

    def undo(self, state: tuple[int, int, float]) -> None:
        """Also the W_max of before the reduction (the window the path did carry), and
        a new epoch from the restored window."""
        super().undo(state)
        self.w_max = max(self.w_max, state[2])
        self.epoch_start = None

    def on_enter_recovery(self, flight_size: int, now: float) -> None:
        self._slow_start_over()
        self._reduce(now)
        self.cwnd = self.ssthresh
        self._bytes_acked = 0

    def on_timeout(self, flight_size: int, now: float) -> None:
        # §4.8: as Reno, but ssthresh from beta_cubic.
        self._slow_start_over()
        self._reduce(now)
        self.cwnd = self.mss
        self._bytes_acked = 0


register("cubic", Cubic)
