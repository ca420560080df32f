"""HyStart++ (RFC 9406): leave slow start when the RTT starts to grow, not at a loss.

Slow start doubles the window every round trip until a packet is lost, and by then
the window is up to twice what the path holds: a burst of losses, often an RTO.
HyStart++ watches each round's smallest RTT; once it rises clearly above the last
round's (a queue is building), the window grows a quarter as fast ("Conservative
Slow Start", CSS) for a few rounds, and then congestion avoidance takes over.  A
round whose RTT falls back below the CSS baseline means the rise was jitter: slow
start resumes.

Only the first slow start uses it (RFC 9406 §4.3: after a loss or an RTO the
ssthresh already says where the path's limit is).  L, the cap on the bytes one ACK
may add, is infinite here: aiotcp byte-counts stretch ACKs in slow start as Linux
does (one ACK often covers a whole receive batch), and an L of 8 segments would
make slow start crawl; the RFC's own value for a paced sender.
"""

from __future__ import annotations

from typing import Final

from aiotcp.core.seq import seq_ge

#: RFC 9406 §4.3 constants.
MIN_RTT_THRESH: Final = 0.004
MAX_RTT_THRESH: Final = 0.016
MIN_RTT_DIVISOR: Final = 8
N_RTT_SAMPLE: Final = 8
CSS_GROWTH_DIVISOR: Final = 4
CSS_ROUNDS: Final = 5

_NONE: Final = float("inf")


class HyStartPlusPlus:
    """The state of RFC 9406 §4.2 for one connection's initial slow start."""

    __slots__ = (
        "active",
        "css_baseline",
        "css_rounds",
        "current_min",
        "last_min",
        "samples",
        "window_end",
    )

    def __init__(self) -> None:
        self.active = True
        """False once slow start has ended for good (loss, RTO, or CSS done)."""
        self.last_min = _NONE  # lastRoundMinRTT
        self.current_min = _NONE  # currentRoundMinRTT
        self.samples = 0  # rttSampleCount
        self.window_end: int | None = None  # windowEnd: SND.NXT when the round began
        self.css_baseline = _NONE  # cssBaselineMinRtt; finite while in CSS
        self.css_rounds = 0

    @property
    def in_css(self) -> bool:
        return self.css_baseline != _NONE

    def on_ack(self, ack: int, snd_nxt: int, rtt: float | None) -> bool:
        """One ACK in slow start or CSS (before its growth).  True: CSS has run its
        rounds, and the caller enters congestion avoidance (ssthresh = cwnd)."""
        end = self.window_end
        if end is None or seq_ge(ack, end):
            # A new round (§4.2: "at the start of each round").
            self.window_end = snd_nxt
            if end is not None:
                self.last_min = self.current_min
                self.current_min = _NONE
                self.samples = 0
                if self.in_css:
                    self.css_rounds += 1
                    if self.css_rounds >= CSS_ROUNDS:
                        self.active = False
                        return True
        if rtt is None:
            return False
        if rtt < self.current_min:
            self.current_min = rtt
        self.samples += 1
        if self.samples < N_RTT_SAMPLE:
            return False
        if not self.in_css:
            if self.last_min != _NONE and self.current_min != _NONE:
                thresh = max(MIN_RTT_THRESH, min(self.last_min / MIN_RTT_DIVISOR, MAX_RTT_THRESH))
                if self.current_min >= self.last_min + thresh:
                    self.css_baseline = self.current_min
                    self.css_rounds = 0
        elif self.current_min < self.css_baseline:
            # The RTT came back down: the rise was jitter, not a queue; slow start again.
            self.css_baseline = _NONE
        return False

    def growth(self, acked: int) -> int:
        """What ``acked`` newly acknowledged bytes add to cwnd (§4.2)."""
        return acked // CSS_GROWTH_DIVISOR if self.in_css else acked

    def stop(self) -> None:
        """A loss, an ECN mark or an RTO ended slow start: no HyStart++ after it."""
        self.active = False
