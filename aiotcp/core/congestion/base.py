"""The interface every congestion control algorithm implements, and their registry.

The connection detects loss (duplicate ACKs, partial ACKs, RTO) and tells the
algorithm; the algorithm only does window arithmetic.  That split lets CUBIC
and NewReno share RACK-TLP, SACK recovery and PRR.  Windows are in bytes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

if TYPE_CHECKING:
    from aiotcp.core.rto import RttEstimator
    from aiotcp.core.scoreboard import Delivery

try:
    from mypy_extensions import mypyc_attr as mypyc_attr  # for the algorithms too
except ImportError:  # installed without mypy, so nothing was compiled either

    def mypyc_attr(*attrs: str, **kwattrs: object) -> Callable[[_C], _C]:
        return lambda cls: cls


_C = TypeVar("_C")

# Loss-recovery states, as Linux numbers them (``icsk_ca_state``), for algorithms
# that follow them (``on_rate_sample``).
CA_OPEN: Final = 0
CA_RECOVERY: Final = 3
CA_LOSS: Final = 4


@mypyc_attr(allow_interpreted_subclasses=True)  # an application's own algorithm
class CongestionControl(ABC):
    """What the connection calls; ``cwnd``, ``ssthresh`` and ``pacing_rate`` are what
    comes out (read after each call)."""

    name: str = "abstract"
    controls_window: bool = False
    """The algorithm sets cwnd on every ACK itself, during recovery too, from
    ``on_rate_sample`` (Linux's ``cong_control``): the connection runs no PRR."""
    wants_pacing: bool = False
    """Paced by default (``TcpOptions.pacing`` left at None): the algorithm's
    windows assume it (BBR), as Linux's ``SK_PACING_NEEDED``."""

    def __init__(self, mss: int, initial_window: int = 10) -> None:
        self.mss = mss
        self.initial_window = initial_window
        #: RFC 5681 §3.1 / RFC 6928: IW in bytes.
        self.cwnd = initial_window * mss
        #: RFC 5681 §3.1: "arbitrarily high" initially.
        self.ssthresh = 1 << 30
        #: The connection's RTT estimator (set by the connection): CUBIC needs SRTT.
        self.rtt: RttEstimator | None = None
        #: When the connection's next paced frame may leave (it keeps this current).
        self.next_departure = 0.0

    def set_slow_start(self, kind: str) -> None:
        """``TcpOptions.slow_start``: how the first slow start ends, for algorithms
        that have one (the default ignores it)."""
        return

    def on_ack_sample(self, ack: int, snd_nxt: int, rtt: float | None, now: float) -> None:
        """Every ACK that advances SND.UNA, before ``on_ack``: the cumulative ACK, SND.NXT
        and the RTT this ACK measured (None if it timed nothing, Karn).  For what needs
        rounds and RTTs rather than bytes (HyStart++); window arithmetic ignores it."""
        return

    def undo_state(self) -> tuple[int, int, float]:
        """What a reduction about to happen would lose: given back to ``undo`` if the
        loss proves spurious (cwnd, ssthresh, and one value of the algorithm's)."""
        return (self.cwnd, self.ssthresh, 0.0)

    def undo(self, state: tuple[int, int, float]) -> None:
        """The reduction was for nothing (RFC 3708, RFC 4015 §3; Linux
        ``tcp_undo_cwnd_reduction``): back to at least the windows before it."""
        cwnd, ssthresh, _ = state
        self.cwnd = max(self.cwnd, cwnd)
        self.ssthresh = max(self.ssthresh, ssthresh)

    def on_rate_sample(self, d: Delivery, now: float) -> None:
        """Every ACK, after loss detection, for ``controls_window`` algorithms: what
        it delivered and lost, the delivery-rate sample, the flight and the
        recovery state (``Delivery``'s fields)."""
        return

    def on_repeated_timeout(self, now: float) -> None:
        """The retransmission timer expired again, or during a recovery that already
        reduced: one segment, with ssthresh kept (RFC 5681 §3.1)."""
        self.cwnd = self.mss

    def on_tx_start(self, now: float, app_limited: bool) -> None:
        """Data goes out with nothing in flight (Linux ``CA_EVENT_TX_START``)."""
        return

    def min_frame_segments(self) -> int:
        """The fewest segments a paced frame holds (Linux ``tcp_min_tso_segs``)."""
        return 2

    def info(self) -> dict[str, object]:
        """The algorithm's own state for ``info()`` and ``ss`` (none by default)."""
        return {}

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
        """A loss was detected (fast retransmit): set ssthresh, and cwnd to it.

        During the recovery that follows the connection paces the window itself
        with PRR (RFC 6937) from ``pipe`` toward ``ssthresh``, as Linux does; RFC
        6582's inflate-by-one-SMSS-per-duplicate-ACK is what PRR replaces."""

    def on_exit_recovery(self, flight_size: int) -> None:
        """Recovery ended (RFC 6582 §3.2 step 3; RFC 6937: cwnd = ssthresh)."""
        self.cwnd = max(self.ssthresh, self.mss)

    @abstractmethod
    def on_timeout(self, flight_size: int, now: float) -> None:
        """The retransmission timer expired (RFC 5681 §3.1, equation 4 and loss window)."""

    @property
    def pacing_rate(self) -> float | None:
        """Bytes per second the window allows, spread over an RTT: 200 % of
        cwnd/SRTT in slow start (the window doubles within the RTT), 120 % after
        (Linux ``tcp_update_pacing_rate``). None before the first RTT sample.
        The connection paces at it when ``TcpOptions.pacing`` (or, left at None,
        ``wants_pacing``) says so; otherwise each run of segments goes out at once,
        as Linux's CUBIC without the fq qdisc."""
        srtt = self.rtt.srtt if self.rtt is not None else None
        if not srtt:
            return None
        factor = 2.0 if self.cwnd < self.ssthresh // 2 else 1.2
        return factor * self.cwnd / srtt

    def on_idle_restart(self, now: float) -> None:
        """RFC 5681 §4.1: after an idle period longer than the RTO, restart from
        RW = min(IW, cwnd) so a stale window does not burst into the network."""
        self.cwnd = min(self.cwnd, self.initial_window * self.mss)


Factory = Callable[[int, int], CongestionControl]

ALGORITHMS: Final[dict[str, Factory]] = {}
"""Algorithms by the name ``TcpOptions.congestion`` gives; each module of this
package adds its own (``register``) when it is imported."""


def register(name: str, factory: Factory) -> None:
    """Add an algorithm under ``name`` (what ``TcpOptions.congestion`` selects)."""
    ALGORITHMS[name] = factory
