"""NewReno: RFC 5681 slow start and congestion avoidance, RFC 6582 fast recovery."""

from __future__ import annotations

from aiotcp.core.congestion.base import CongestionControl, mypyc_attr, register
from aiotcp.core.congestion.hystart import DEFAULT_SLOW_START, SlowStartExit, slow_start_exit


@mypyc_attr(allow_interpreted_subclasses=True)
class NewReno(CongestionControl):
    """RFC 5681 slow start / congestion avoidance with RFC 6582 fast recovery."""

    name = "newreno"

    def __init__(self, mss: int, initial_window: int = 10) -> None:
        super().__init__(mss, initial_window)
        self._bytes_acked = 0
        self.hystart: SlowStartExit | None = slow_start_exit(DEFAULT_SLOW_START)

    def set_slow_start(self, kind: str) -> None:
        self.hystart = slow_start_exit(kind)

    def on_ack_sample(self, ack: int, snd_nxt: int, rtt: float | None, now: float) -> None:
        hs = self.hystart
        if hs is None or not hs.active or self.cwnd >= self.ssthresh:
            return
        if hs.on_ack(ack, snd_nxt, rtt, now, self.cwnd // self.mss):
            self.ssthresh = self.cwnd  # congestion avoidance from here

    def _half_window(self) -> int:
        """Half the window: ``max(cwnd / 2, 2*SMSS)``, as Linux's ``tcp_reno_ssthresh``.

        RFC 5681 equation (4) halves FlightSize instead, and warns against cwnd
        because it can grow past anything sent.  Here it cannot: cwnd grows only
        while it limits the sender (``Recovery.on_new_ack``, RFC 7661), so it is the
        window the path carried.  FlightSize at the moment a loss is found is
        not: a burst of ACKs processed as one batch grows cwnd before the sender
        refills it, and the SACKs at the end of the burst then halve a flight
        far short of it (165 segments against a cwnd of 290 in a capture of
        NewReno at 80 ms, docs/congestion.md).
        """
        return max(self.cwnd // self.mss // 2, 2) * self.mss  # whole segments

    def on_ack(self, acked: int, flight_size: int, now: float) -> None:
        if self.cwnd < self.ssthresh:
            # RFC 5681 §3.1 slow start with byte counting (RFC 3465) and no per-ACK
            # limit, as Linux: the driver processes segments in batches, so one ACK
            # often covers many segments (a "stretch ACK", like GRO), and capping
            # growth per ACK would make slow start crawl.
            grow = min(acked, self.ssthresh - self.cwnd)
            hs = self.hystart
            self.cwnd += grow if hs is None or not hs.active else hs.growth(grow)
            acked -= grow
        if acked and self.cwnd >= self.ssthresh:
            # RFC 5681 §3.1 congestion avoidance: one SMSS per window acknowledged,
            # byte-counted.  The window counts whole segments, as Linux's does:
            # only those are in flight, and a round trip acknowledges no more, so
            # a window with a fraction (PRR leaves one) would grow a round trip
            # late every few (7 % of goodput at 20 ms and 1 % loss).
            mss = self.mss
            window = max(self.cwnd // mss, 1) * mss
            self._bytes_acked += acked
            if self._bytes_acked >= window:
                self._bytes_acked -= window
                self.cwnd = window + mss

    def _slow_start_over(self) -> None:
        """A loss or an RTO: slow start ends where it is (RFC 9406 §4.2), for good."""
        if self.hystart is not None:
            self.hystart.stop()

    def on_enter_recovery(self, flight_size: int, now: float) -> None:
        self._slow_start_over()
        self.ssthresh = self._half_window()
        self.cwnd = self.ssthresh
        self._bytes_acked = 0

    def on_timeout(self, flight_size: int, now: float) -> None:
        self._slow_start_over()
        self.ssthresh = self._half_window()
        self.cwnd = self.mss  # RFC 5681 §3.1: loss window LW = 1 SMSS
        self._bytes_acked = 0


register("newreno", NewReno)
register("reno", NewReno)
