"""Congestion control behind a small interface (RFC 5681, RFC 6582 NewReno).

The connection detects loss (duplicate ACKs, partial ACKs, RTO) and tells the
algorithm; the algorithm only does window arithmetic.  That split is what lets
issue 7 add CUBIC and SACK-based recovery without touching the state machine.
Windows are in bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiotcp.core.rto import RttEstimator


class CongestionControl(ABC):
    """What the connection calls; ``cwnd`` and ``ssthresh`` are read after each call."""

    name: str = "abstract"

    def __init__(self, mss: int, initial_window: int = 10) -> None:
        self.mss = mss
        self.initial_window = initial_window
        #: RFC 5681 §3.1 / RFC 6928: IW in bytes.
        self.cwnd = initial_window * mss
        #: RFC 5681 §3.1: "arbitrarily high" initially.
        self.ssthresh = 1 << 30
        #: The connection's RTT estimator (set by the connection): CUBIC needs SRTT.
        self.rtt: RttEstimator | None = None

    def set_mss(self, mss: int) -> None:
        """The effective MSS is known only after the handshake; rescale IW to it."""
        segments = max(self.cwnd // self.mss, 1)
        self.mss = mss
        self.cwnd = segments * mss

    @abstractmethod
    def on_ack(self, acked: int, flight_size: int, now: float) -> None:
        """New data was cumulatively acknowledged outside fast recovery."""

    @abstractmethod
    def on_enter_recovery(self, flight_size: int, now: float) -> None:
        """Third duplicate ACK: fast retransmit happens now (RFC 5681 §3.2 steps 2-3)."""

    @abstractmethod
    def on_dup_ack_in_recovery(self) -> None:
        """Another duplicate ACK during fast recovery (RFC 5681 §3.2 step 4)."""

    @abstractmethod
    def on_partial_ack(self, acked: int) -> None:
        """An ACK below the recovery point (RFC 6582 §3.2 step 5)."""

    @abstractmethod
    def on_exit_recovery(self, flight_size: int) -> None:
        """An ACK covering the recovery point (RFC 6582 §3.2 step 3)."""

    @abstractmethod
    def on_timeout(self, flight_size: int, now: float) -> None:
        """The retransmission timer expired (RFC 5681 §3.1, equation 4 and loss window)."""

    def on_idle_restart(self, now: float) -> None:
        """RFC 5681 §4.1: after an idle period longer than the RTO, restart from
        RW = min(IW, cwnd) so a stale window does not burst into the network."""
        self.cwnd = min(self.cwnd, self.initial_window * self.mss)


class NewReno(CongestionControl):
    """RFC 5681 slow start / congestion avoidance with RFC 6582 fast recovery."""

    name = "newreno"

    def __init__(self, mss: int, initial_window: int = 10) -> None:
        super().__init__(mss, initial_window)
        self._bytes_acked = 0

    def _half_flight(self, flight_size: int) -> int:
        """RFC 5681 equation (4): ``max(FlightSize / 2, 2*SMSS)``."""
        return max(flight_size // 2, 2 * self.mss)

    def on_ack(self, acked: int, flight_size: int, now: float) -> None:
        if self.cwnd < self.ssthresh:
            # RFC 5681 §3.1 slow start with byte counting (RFC 3465) and no per-ACK
            # limit, as Linux: the driver processes segments in batches, so one ACK
            # often covers many segments (a "stretch ACK", like GRO), and capping
            # growth per ACK would make slow start crawl.
            grow = min(acked, self.ssthresh - self.cwnd)
            self.cwnd += grow
            acked -= grow
        if acked and self.cwnd >= self.ssthresh:
            # RFC 5681 §3.1 congestion avoidance: about one SMSS per RTT, byte-counted.
            self._bytes_acked += acked
            if self._bytes_acked >= self.cwnd:
                self._bytes_acked -= self.cwnd
                self.cwnd += self.mss

    def on_enter_recovery(self, flight_size: int, now: float) -> None:
        self.ssthresh = self._half_flight(flight_size)
        self.cwnd = self.ssthresh + 3 * self.mss
        self._bytes_acked = 0

    def on_dup_ack_in_recovery(self) -> None:
        self.cwnd += self.mss

    def on_partial_ack(self, acked: int) -> None:
        # RFC 6582 §3.2 step 5: deflate by the amount acked, add back one SMSS.
        self.cwnd = max(self.cwnd - acked + self.mss, self.mss)

    def on_exit_recovery(self, flight_size: int) -> None:
        # RFC 6582 §3.2 step 3, option (1) bounded as option (2) to avoid a burst.
        self.cwnd = min(self.ssthresh, max(flight_size, self.mss) + self.mss)

    def on_timeout(self, flight_size: int, now: float) -> None:
        self.ssthresh = self._half_flight(flight_size)
        self.cwnd = self.mss  # RFC 5681 §3.1: loss window LW = 1 SMSS
        self._bytes_acked = 0


Factory = Callable[[int, int], CongestionControl]

ALGORITHMS: dict[str, Factory] = {"newreno": NewReno, "reno": NewReno}


def register(name: str, factory: Factory) -> None:
    """Add an algorithm (issue 7 registers CUBIC here)."""
    ALGORITHMS[name] = factory


def create(name: str, mss: int, initial_window: int = 10) -> CongestionControl:
    try:
        factory = ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown congestion control {name!r}; choose from {sorted(ALGORITHMS)}"
        ) from None
    return factory(mss, initial_window)


# CUBIC builds on NewReno above, so it is imported once that exists.
from aiotcp.core.cubic import Cubic  # noqa: E402

register("cubic", Cubic)
