"""Retransmission timeout estimator (RFC 6298) with Karn's rule and backoff.

Karn's algorithm (RFC 6298 §3) is the caller's job: it only feeds samples from
segments that were not retransmitted, or from timestamp echoes (RFC 7323 §4.1),
which are unambiguous.
"""

from __future__ import annotations

from typing import Final

K: Final = 4
ALPHA: Final = 1 / 8
BETA: Final = 1 / 4
#: RFC 6298 §5.7: RTO after a lost SYN when no RTT sample exists yet.
RTO_FALLBACK: Final = 3.0


class RttEstimator:
    """SRTT / RTTVAR / RTO per RFC 6298 §2, clamped to ``[rto_min, rto_max]``."""

    __slots__ = ("_base", "backoff", "granularity", "rto_max", "rto_min", "rttvar", "srtt")

    def __init__(
        self,
        initial: float = 1.0,
        rto_min: float = 0.2,
        rto_max: float = 120.0,
        granularity: float = 0.001,
    ) -> None:
        self.srtt: float | None = None
        self.rttvar: float | None = None
        self.rto_min = rto_min
        self.rto_max = rto_max
        self.granularity = granularity
        self.backoff = 0
        self._base = min(max(initial, rto_min), rto_max)

    def sample(self, rtt: float) -> None:
        """Fold one RTT measurement in (RFC 6298 §2.2 / §2.3) and clear the backoff.

        RFC 6298 §5.7 lets a new sample collapse the backed-off RTO again.
        """
        rtt = max(rtt, 0.0)
        if self.srtt is None or self.rttvar is None:
            self.srtt = rtt
            self.rttvar = rtt / 2
        else:
            self.rttvar = (1 - BETA) * self.rttvar + BETA * abs(self.srtt - rtt)
            self.srtt = (1 - ALPHA) * self.srtt + ALPHA * rtt
        # As Linux (tcp_set_rto), the floor bounds the variance term, not the sum:
        # RTO >= SRTT + rto_min.  A floor on the sum alone (RFC 6298 §2.4) leaves
        # a path whose RTT approaches rto_min with timeouts that fire before a
        # retransmission's ACK can return — spurious RTOs, each a cwnd collapse.
        self._base = self.srtt + max(self.granularity, K * self.rttvar, self.rto_min)
        self.backoff = 0

    def on_timeout(self) -> None:
        """RFC 6298 §5.5: double the RTO ("back off the timer")."""
        self.backoff += 1

    def reset_backoff(self) -> None:
        self.backoff = 0

    def fallback(self) -> None:
        """RFC 6298 §5.7: no sample after a lost SYN: start data transfer at 3 s."""
        if self.srtt is None:
            self._base = max(self._base, RTO_FALLBACK)

    @property
    def rto(self) -> float:
        """Current timeout, including exponential backoff, within the bounds (§2.4, §2.5)."""
        base = min(max(self._base, self.rto_min), self.rto_max)
        return min(base * (1 << min(self.backoff, 30)), self.rto_max)
