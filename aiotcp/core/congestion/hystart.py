"""Leaving slow start before the queue overflows: HyStart++ (RFC 9406), the default,
and Linux's own HyStart (``tcp_cubic.c``), an option.

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
#: ``TcpOptions.slow_start``'s default, which NewReno and CUBIC are built with.
DEFAULT_SLOW_START: Final = "hystart++"


class SlowStartExit:
    """What NewReno and CUBIC ask of a slow-start exit heuristic."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True
        """False once slow start has ended for good (loss, RTO, or the heuristic)."""

    def on_ack(self, ack: int, snd_nxt: int, rtt: float | None, now: float, cwnd: int) -> bool:
        """One ACK in slow start (before its growth), ``cwnd`` in segments.  True:
        slow start is over, and the caller enters congestion avoidance (ssthresh =
        cwnd)."""
        raise NotImplementedError

    def growth(self, acked: int) -> int:
        """What ``acked`` newly acknowledged bytes add to cwnd."""
        return acked

    def stop(self) -> None:
        """A loss, an ECN mark or an RTO ended slow start: no heuristic after it."""
        self.active = False


class HyStartPlusPlus(SlowStartExit):
    """The state of RFC 9406 §4.2 for one connection's initial slow start."""

    __slots__ = (
        "css_baseline",
        "css_rounds",
        "current_min",
        "last_min",
        "samples",
        "window_end",
    )

    def __init__(self) -> None:
        super().__init__()
        self.last_min = _NONE  # lastRoundMinRTT
        self.current_min = _NONE  # currentRoundMinRTT
        self.samples = 0  # rttSampleCount
        self.window_end: int | None = None  # windowEnd: SND.NXT when the round began
        self.css_baseline = _NONE  # cssBaselineMinRtt; finite while in CSS
        self.css_rounds = 0

    @property
    def in_css(self) -> bool:
        return self.css_baseline != _NONE

    def on_ack(self, ack: int, snd_nxt: int, rtt: float | None, now: float, cwnd: int) -> bool:
        """One ACK in slow start or CSS (before its growth).  True: CSS has run its
        rounds."""
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
        """§4.2: a quarter in CSS."""
        return acked // CSS_GROWTH_DIVISOR if self.in_css else acked


#: Linux ``tcp_cubic.c``: HyStart acts from this window on (segments) ...
LOW_WINDOW: Final = 16
#: ... an ACK this soon after the last one continues the train ...
ACK_DELTA: Final = 0.002
#: ... and a round's RTT counts after this many samples.
MIN_SAMPLES: Final = 8


class LinuxHyStart(SlowStartExit):
    """Linux's HyStart (Ha and Rhee, "Taming the elephants", 2011, as ``tcp_cubic.c``
    has it): slow start ends when either

    - the ACK train of a round, ACKs no more than 2 ms apart, has lasted longer than
      half the minimum RTT (the window already fills the path), or
    - a round's RTT (the least of its first 8 samples) exceeds the minimum RTT by an
      eighth of it, at least 4 and at most 16 ms (a queue is building).

    Unlike HyStart++ it then goes straight to congestion avoidance, and it acts
    only once the window has 16 segments.
    """

    __slots__ = ("curr_rtt", "delay_min", "end_seq", "last_ack", "round_start", "samples")

    def __init__(self) -> None:
        super().__init__()
        self.delay_min = _NONE  # the least RTT seen (Linux's delay_min)
        self.end_seq: int | None = None  # the round ends when this is acknowledged
        self.round_start = 0.0
        self.last_ack = 0.0
        self.curr_rtt = _NONE  # this round's least RTT among its first samples
        self.samples = 0

    def on_ack(self, ack: int, snd_nxt: int, rtt: float | None, now: float, cwnd: int) -> bool:
        if rtt is not None and rtt < self.delay_min:
            self.delay_min = rtt
        end = self.end_seq
        if end is None or seq_ge(ack, end):  # bictcp_hystart_reset
            self.end_seq = snd_nxt
            self.round_start = self.last_ack = now
            self.curr_rtt = _NONE
            self.samples = 0
        if cwnd < LOW_WINDOW or self.delay_min == _NONE:
            return False
        if now - self.last_ack <= ACK_DELTA:
            self.last_ack = now
            # Unpaced, the train is judged against half the minimum RTT.
            if now - self.round_start > self.delay_min / 2:
                return self._found()
        if rtt is None:
            return False
        if self.samples < MIN_SAMPLES:
            if rtt < self.curr_rtt:
                self.curr_rtt = rtt
            self.samples += 1
        else:
            thresh = max(MIN_RTT_THRESH, min(self.delay_min / 8, MAX_RTT_THRESH))
            if self.curr_rtt > self.delay_min + thresh:
                return self._found()
        return False

    def _found(self) -> bool:
        self.active = False
        return True


def slow_start_exit(kind: str) -> SlowStartExit | None:
    """``TcpOptions.slow_start``: the heuristic it names (None: RFC 5681's)."""
    if kind == "hystart++":
        return HyStartPlusPlus()
    if kind == "hystart":
        return LinuxHyStart()
    return None
