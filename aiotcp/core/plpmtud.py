"""Packetization-layer path MTU discovery (RFC 4821; RFC 8899 §5 for the search),
with Linux's ``tcp_mtu_probing`` as the reference for when and how.

ICMP "fragmentation needed" is not always delivered: a firewall that drops ICMP
turns a path with a smaller MTU into a black hole, where full-size segments die
and nothing says why.  The connection then notices only that retransmissions go
unanswered.  Linux's answer, kept here: after ``tcp_retries1`` retransmission
timeouts, suspect the MTU and fall back to a base MSS (1024 bytes), halving it
while the timeouts go on; then probe upwards, one larger segment at a time,
bisecting between the largest MTU known to work and the smallest known (or
assumed) not to, until the interval is narrow.  A probe that is acknowledged
raises the MSS; a lost one lowers the upper bound — neither is congestion.

The search is in MTU bytes (IP packet sizes), as Linux's ``icsk_mtup``; the
connection converts to and from its MSS.  Only connections that need it carry
one: the state is created when probing starts.
"""

from __future__ import annotations

from typing import Final

PROBE_THRESHOLD: Final = 8
"""Linux's ``tcp_probe_threshold``: the search stops when the interval between a
working and a failing MTU is narrower than this many bytes."""
PROBE_INTERVAL: Final = 600.0
"""Linux's ``tcp_probe_interval`` (seconds): after that long, search upwards again
(the path may have changed)."""
PROBE_FLOOR_MSS: Final = 48
"""Linux's ``tcp_mtu_probe_floor`` and ``tcp_min_snd_mss``: never below this."""
PROBE_MIN_CWND: Final = 11
"""Linux probes only with a congestion window of at least 11 segments, so a lost
probe costs little."""


class MtuSearch:
    """Where the search stands: ``low`` works, ``high`` is the most that may."""

    __slots__ = ("high", "low", "low_works", "probe_end", "probe_mtu", "probe_start", "started")

    def __init__(self, low: int, high: int, now: float) -> None:
        self.low = min(low, high)
        self.high = high
        self.probe_mtu = 0
        """The size of the probe in flight (0: none)."""
        self.probe_start = 0
        self.probe_end = 0
        self.started = now
        """When this round of searching began (``PROBE_INTERVAL``)."""
        self.low_works = False
        """Data sent at ``low`` has been acknowledged: further timeouts are loss,
        not the MTU (without this, random loss halved the MSS again and again)."""

    def next_probe(self, now: float, ceiling: int) -> int | None:
        """The MTU to probe next, or None: a probe is in flight, or the interval is
        already narrow (then, ``PROBE_INTERVAL`` after the search began, it opens
        up to ``ceiling`` again, as Linux's ``tcp_mtu_check_reprobe``)."""
        if self.probe_mtu:
            return None
        if self.high - self.low < PROBE_THRESHOLD:
            if now - self.started < PROBE_INTERVAL:
                return None
            self.high = ceiling
            self.started = now
            if self.high - self.low < PROBE_THRESHOLD:
                return None
        return (self.high + self.low) // 2

    def sent(self, mtu: int, start: int, end: int) -> None:
        self.probe_mtu = mtu
        self.probe_start = start
        self.probe_end = end

    def succeeded(self) -> None:
        """The probe was acknowledged: its size works."""
        self.low = self.probe_mtu
        self.low_works = True
        self.probe_mtu = 0

    def failed(self) -> None:
        """The probe was lost: nothing of its size or more is assumed to pass."""
        self.high = max(self.probe_mtu - 1, self.low)
        self.probe_mtu = 0
