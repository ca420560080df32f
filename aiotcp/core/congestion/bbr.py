"""BBR congestion control, version 1, as Linux's ``tcp_bbr.c`` runs it.

BBR models the path instead of reacting to loss: the bottleneck bandwidth (the
largest delivery rate measured over the last ten round trips) and the round-trip
propagation delay (the smallest RTT of the last ten seconds).  It paces at a gain
times that bandwidth and keeps about two bandwidth-delay products in flight.  A
random loss of a few percent, which halves CUBIC's window each time, barely
moves either estimate: that is why a Linux host with BBR keeps its speed on a
lossy path where CUBIC crawls.

Why version 1: it is the BBR of mainline Linux (``net/ipv4/tcp_bbr.c``), the one
aiotcp's users meet on the other end and the one ``bench/congestion.py`` measures
against; BBRv3 lives out of tree.  Everything of v1 is here — STARTUP with a
2/ln 2 gain until three rounds without 25 % growth, DRAIN, PROBE_BW's eight-phase
gain cycle, PROBE_RTT every ten seconds without a new minimum, packet
conservation in the first round of recovery, the long-term ("policer") bandwidth
estimate, and the ACK-aggregation allowance of Linux 5.1.

Units differ from Linux's: bytes and seconds instead of packets and microseconds
(rates in bytes per second).  The connection measures delivery rates (the
scoreboard, as ``tcp_rate.c``), calls ``on_rate_sample`` on every ACK instead of
running PRR, and paces at ``pacing_rate`` (``docs/congestion.md``).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Final

from aiotcp.core.congestion.base import (
    CA_LOSS,
    CA_OPEN,
    CA_RECOVERY,
    CongestionControl,
    mypyc_attr,
    register,
)

if TYPE_CHECKING:
    from aiotcp.core.scoreboard import Delivery

STARTUP: Final = 0
DRAIN: Final = 1
PROBE_BW: Final = 2
PROBE_RTT: Final = 3
MODE_NAMES: Final = ("STARTUP", "DRAIN", "PROBE_BW", "PROBE_RTT")

#: The gain cycle is eight phases long; the bandwidth filter spans two more rounds.
CYCLE_LEN: Final = 8
BW_FILTER_ROUNDS: Final = CYCLE_LEN + 2
MIN_RTT_WINDOW: Final = 10.0
PROBE_RTT_TIME: Final = 0.2
#: Below this pacing rate (1.2 Mbit/s) frames are single segments.
MIN_TSO_RATE: Final = 1_200_000 / 8
#: Pace about 1 % below the estimate, so the bottleneck's queue drains on average.
PACING_MARGIN: Final = 0.99
#: 2/ln 2: the smallest gain that doubles the sending rate every round, like slow start.
HIGH_GAIN: Final = 2885 / 1000 + 1 / 256
DRAIN_GAIN: Final = 1000 / 2885
CWND_GAIN: Final = 2.0
#: (A literal tuple: a computed Final tuple is left unset by mypyc.)
PACING_GAINS: Final[tuple[float, ...]] = (1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)
#: The cycle starts at a random phase, but never the draining one.
CYCLE_RAND: Final = 7
CWND_MIN_SEGMENTS: Final = 4
FULL_BW_THRESH: Final = 5 / 4
FULL_BW_COUNT: Final = 3
# Long-term bandwidth: a policer shows as two intervals of consistent rate and
# over 20 % loss; then the average of the two is used for 48 rounds.
LT_INTERVAL_MIN_ROUNDS: Final = 4
LT_LOSS_THRESH: Final = 50 / 256
LT_BW_RATIO: Final = 1 / 8
LT_BW_DIFF: Final = 4000 / 8
LT_BW_MAX_ROUNDS: Final = 48
# ACK aggregation: extra cwnd for data ACKed beyond what the bandwidth explains.
EXTRA_ACKED_GAIN: Final = 1.0
EXTRA_ACKED_WINDOW_ROUNDS: Final = 5
EXTRA_ACKED_MAX_TIME: Final = 0.1
#: Linux's ``GSO_LEGACY_MAX_SIZE - 1 - MAX_TCP_HEADER``: the largest frame BBR plans for.
MAX_FRAME: Final = 65536 - 1 - 320
_NO_RTT: Final = float("inf")
#: Where the gain cycle starts (one generator for all connections: each would cost 2.5 KB).
_rng = random.Random()


class WindowedMax:
    """The largest value seen over a sliding window of rounds, kept as the best,
    second best and third best of recent sub-windows (Kathleen Nichols' filter,
    Linux ``lib/win_minmax.c``): constant time and space per sample."""

    __slots__ = ("t0", "t1", "t2", "v0", "v1", "v2")

    def __init__(self) -> None:
        self.t0 = self.t1 = self.t2 = 0
        self.v0 = self.v1 = self.v2 = 0.0

    def get(self) -> float:
        return self.v0

    def reset(self, t: int, value: float) -> float:
        self.t0 = self.t1 = self.t2 = t
        self.v0 = self.v1 = self.v2 = value
        return value

    def update(self, window: int, t: int, value: float) -> float:
        """A new sample at round ``t``: the maximum over the last ``window`` rounds."""
        if value >= self.v0 or t - self.t2 > window:
            return self.reset(t, value)  # a new maximum, or nothing recent enough
        if value >= self.v1:
            self.t2 = self.t1 = t
            self.v2 = self.v1 = value
        elif value >= self.v2:
            self.t2, self.v2 = t, value
        dt = t - self.t0
        if dt > window:  # the best has expired: the second best moves up
            self.t0, self.v0, self.t1, self.v1 = self.t1, self.v1, self.t2, self.v2
            self.t2, self.v2 = t, value
            if t - self.t0 > window:
                self.t0, self.v0, self.t1, self.v1 = self.t1, self.v1, self.t2, self.v2
                self.t2, self.v2 = t, value
        elif self.t1 == self.t0 and dt > window / 4:
            # A quarter of the window passed without a second choice: take one.
            self.t2 = self.t1 = t
            self.v2 = self.v1 = value
        elif self.t2 == self.t1 and dt > window / 2:
            self.t2, self.v2 = t, value
        return self.v0


@mypyc_attr(allow_interpreted_subclasses=True)
class Bbr(CongestionControl):
    """One connection's BBR state (Linux ``struct bbr``)."""

    name = "bbr"
    controls_window = True
    wants_pacing = True

    def __init__(self, mss: int, initial_window: int = 10) -> None:
        super().__init__(mss, initial_window)
        self.mode = STARTUP
        self.bw_filter = WindowedMax()
        self.rounds = 0  # packet-timed round trips so far
        self.next_round_delivered = 0
        self.round_start = False
        self.min_rtt = _NO_RTT
        self.min_rtt_at = -1.0  # stamped at the first ACK (Linux: at bbr_init)
        self.probe_rtt_done_at = 0.0  # 0: not yet at the minimum window
        self.probe_rtt_round_done = False
        self.prior_cwnd = 0
        self.prev_ca_state = CA_OPEN
        self.packet_conservation = False
        self.idle_restart = False
        self.pacing_gain = HIGH_GAIN
        self.cwnd_gain = HIGH_GAIN
        self.full_bw = 0.0
        self.full_bw_count = 0
        self.full_bw_reached = False
        self.cycle_index = 0
        self.cycle_start = 0.0
        self._rate = 0.0  # the pacing rate set; 0 until the first estimate
        self._has_seen_rtt = False
        # Long-term (policer) estimate.
        self.lt_is_sampling = False
        self.lt_use_bw = False
        self.lt_bw = 0.0
        self.lt_rounds = 0
        self.lt_last_delivered = 0
        self.lt_last_lost = 0
        self.lt_last_at = 0.0
        # ACK aggregation.
        self.ack_epoch_at = 0.0
        self.ack_epoch_acked = 0
        self.extra_acked = [0, 0]
        self.extra_acked_rounds = 0
        self.extra_acked_index = 0
        self.ssthresh = 1 << 30  # BBR never sets one (Linux: TCP_INFINITE_SSTHRESH)
        # The connection's totals as of the last ACK, for events that come without
        # one (an RTO, an undo): bytes delivered and lost, and when.
        self._delivered = 0
        self._lost = 0
        self._delivered_at = 0.0

    # -- the connection's questions ---------------------------------------------------

    @property
    def pacing_rate(self) -> float | None:
        if self._rate == 0.0:
            return self._initial_rate()
        return self._rate

    def bandwidth(self) -> float:
        """The bottleneck bandwidth estimate, bytes per second (``btl_bw``)."""
        return self.lt_bw if self.lt_use_bw else self.bw_filter.get()

    def info(self) -> dict[str, object]:
        """What ``ss -i`` shows for BBR (``bbr:(bw:…,mrtt:…,pacing_gain:…,cwnd_gain:…)``)."""
        return {
            "bbr_state": MODE_NAMES[self.mode],
            "bbr_bw": self.bandwidth(),
            "bbr_min_rtt": None if self.min_rtt == _NO_RTT else self.min_rtt,
            "bbr_pacing_gain": self.pacing_gain,
            "bbr_cwnd_gain": self.cwnd_gain,
        }

    # -- events the connection reports -------------------------------------------------

    def on_ack(self, acked: int, flight_size: int, now: float) -> None:
        return  # the window follows the model (``on_rate_sample``), not each ACK

    def on_enter_recovery(self, flight_size: int, now: float) -> None:
        self._save_cwnd()  # Linux's bbr_ssthresh; the window is set on the next ACK

    def on_exit_recovery(self, flight_size: int) -> None:
        return  # restored on the next ACK, which sees the state change

    def on_timeout(self, flight_size: int, now: float) -> None:
        """``tcp_enter_loss``: the window falls to one segment, the model stays; the
        round ends and full-bandwidth detection starts over (``bbr_set_state``)."""
        self._save_cwnd()
        self.on_repeated_timeout(now)

    def on_repeated_timeout(self, now: float) -> None:
        self.cwnd = self.mss
        self.prev_ca_state = CA_LOSS
        self.full_bw = 0.0
        self.round_start = True
        self._lt_sampling(1, False, self._delivered, self._lost, self._delivered_at)

    def undo(self, state: tuple[int, int, float]) -> None:
        """A reduction proved spurious: BBR made none, but its full-pipe estimate
        may have stopped growing because of it (``bbr_undo_cwnd``)."""
        self.full_bw = 0.0
        self.full_bw_count = 0
        self._reset_lt_sampling(self._delivered, self._lost, self._delivered_at)

    def on_idle_restart(self, now: float) -> None:
        return  # BBR's own restart is ``on_tx_start``; the model knows the rate

    def on_tx_start(self, now: float, app_limited: bool) -> None:
        """Sending resumes with nothing in flight (``CA_EVENT_TX_START``)."""
        if not app_limited:
            return
        self.idle_restart = True
        self.ack_epoch_at = now
        self.ack_epoch_acked = 0
        if self.mode == PROBE_BW:
            self._set_pacing_rate(self.bandwidth(), 1.0)  # no need to hurry
        elif self.mode == PROBE_RTT:
            self._check_probe_rtt_done(now)

    def on_rate_sample(self, d: Delivery, now: float) -> None:
        """Every ACK (Linux ``bbr_main``): update the model, then pace and size the
        window from it."""
        self._delivered, self._lost, self._delivered_at = (
            d.total_delivered,
            d.total_lost,
            d.delivered_at,
        )
        self._update_model(d, now)
        self._set_pacing_rate(self.bandwidth(), self.pacing_gain)
        self._set_cwnd(d, d.delivered, now)

    # -- the model ------------------------------------------------------------------------

    def _update_model(self, d: Delivery, now: float) -> None:
        self._update_bw(d, now)
        self._update_ack_aggregation(d)
        if self.mode == PROBE_BW and self._is_next_cycle_phase(d, now):
            self._advance_cycle_phase(d.delivered_at)
        self._check_full_bw_reached(d)
        self._check_drain(d, now)
        self._update_min_rtt(d, now)
        self._update_gains()

    def _update_bw(self, d: Delivery, now: float) -> None:
        self.round_start = False
        if d.rate_delivered < 0 or d.rate_interval <= 0:
            return  # not a valid sample
        if d.rate_prior_delivered >= self.next_round_delivered:
            self.next_round_delivered = d.total_delivered
            self.rounds += 1
            self.round_start = True
            self.packet_conservation = False
        self._lt_sampling(
            d.lost_now, d.rate_app_limited, d.total_delivered, d.total_lost, d.delivered_at
        )
        bw = d.rate_delivered / d.rate_interval
        # An application-limited sample says how fast the application wrote: it
        # counts only if it shows at least the bandwidth the model already has.
        if not d.rate_app_limited or bw >= self.bw_filter.get():
            self.bw_filter.update(BW_FILTER_ROUNDS, self.rounds, bw)

    def _update_ack_aggregation(self, d: Delivery) -> None:
        """How much more than the bandwidth explains arrived in one burst of ACKs
        (a receiver's stretch ACKs, GRO): that much extra window keeps the sender
        going through the silences between such bursts."""
        acked = d.delivered
        if acked <= 0 or d.rate_delivered < 0 or d.rate_interval <= 0:
            return
        if self.round_start:
            self.extra_acked_rounds = min(31, self.extra_acked_rounds + 1)
            if self.extra_acked_rounds >= EXTRA_ACKED_WINDOW_ROUNDS:
                self.extra_acked_rounds = 0
                self.extra_acked_index ^= 1
                self.extra_acked[self.extra_acked_index] = 0
        expected = int(self.bandwidth() * (d.delivered_at - self.ack_epoch_at))
        if self.ack_epoch_acked <= expected or self.ack_epoch_acked + acked >= 1 << 40:
            self.ack_epoch_acked = 0
            self.ack_epoch_at = d.delivered_at
            expected = 0
        self.ack_epoch_acked += acked
        extra = min(self.ack_epoch_acked - expected, self.cwnd)
        if extra > self.extra_acked[self.extra_acked_index]:
            self.extra_acked[self.extra_acked_index] = extra

    def _is_next_cycle_phase(self, d: Delivery, now: float) -> bool:
        full_length = d.delivered_at - self.cycle_start > self.min_rtt
        gain = self.pacing_gain
        if gain == 1.0:
            return full_length
        inflight = self._in_network_at_edt(d.prior_in_flight, now)
        bw = self.bw_filter.get()
        if gain > 1.0:
            # Probing: until the flight reaches gain × BDP, unless a loss says the
            # path's buffer cannot hold that much.
            return full_length and (d.lost_now > 0 or inflight >= self._inflight(bw, gain))
        # Draining: until the flight is down to one BDP.
        return full_length or inflight <= self._inflight(bw, 1.0)

    def _advance_cycle_phase(self, at: float) -> None:
        self.cycle_index = (self.cycle_index + 1) % CYCLE_LEN
        self.cycle_start = at

    def _reset_probe_bw_mode(self, at: float) -> None:
        self.mode = PROBE_BW
        self.cycle_index = CYCLE_LEN - 1 - _rng.randrange(CYCLE_RAND)
        self._advance_cycle_phase(at)

    def _reset_mode(self, at: float) -> None:
        if self.full_bw_reached:
            self._reset_probe_bw_mode(at)
        else:
            self.mode = STARTUP

    def _check_full_bw_reached(self, d: Delivery) -> None:
        """STARTUP filled the pipe once three rounds in a row grew the bandwidth by
        less than a quarter (one for the receiver's window to grow, one to fill it,
        one to see the rate)."""
        if self.full_bw_reached or not self.round_start or d.rate_app_limited:
            return
        bw = self.bw_filter.get()
        if bw >= self.full_bw * FULL_BW_THRESH:
            self.full_bw = bw
            self.full_bw_count = 0
            return
        self.full_bw_count += 1
        self.full_bw_reached = self.full_bw_count >= FULL_BW_COUNT

    def _check_drain(self, d: Delivery, now: float) -> None:
        if self.mode == STARTUP and self.full_bw_reached:
            self.mode = DRAIN  # the queue STARTUP built goes first
            self.ssthresh = self._inflight(self.bw_filter.get(), 1.0)
        if self.mode == DRAIN and self._in_network_at_edt(d.in_flight, now) <= self._inflight(
            self.bw_filter.get(), 1.0
        ):
            self._reset_probe_bw_mode(d.delivered_at)

    def _update_min_rtt(self, d: Delivery, now: float) -> None:
        """The propagation delay is the smallest RTT of ten seconds; when ten seconds
        pass without one as small, PROBE_RTT empties the queue for 200 ms (and a
        round) to measure it again."""
        if self.min_rtt_at < 0:
            # The ten seconds count from the algorithm's start: a connection set up
            # (or switched to BBR) late on the clock is not due for PROBE_RTT.
            self.min_rtt_at = now
        expired = now > self.min_rtt_at + MIN_RTT_WINDOW
        rtt = d.rate_rtt
        if rtt >= 0 and (rtt < self.min_rtt or expired):
            self.min_rtt = rtt
            self.min_rtt_at = now
        if expired and not self.idle_restart and self.mode != PROBE_RTT:
            self.mode = PROBE_RTT
            self._save_cwnd()
            self.probe_rtt_done_at = 0.0
        if self.mode == PROBE_RTT:
            d.mark_app_limited = True  # the low rates of this mode are not the path's
            if not self.probe_rtt_done_at and d.in_flight <= CWND_MIN_SEGMENTS * self.mss:
                self.probe_rtt_done_at = now + PROBE_RTT_TIME
                self.probe_rtt_round_done = False
                self.next_round_delivered = d.total_delivered
            elif self.probe_rtt_done_at:
                if self.round_start:
                    self.probe_rtt_round_done = True
                if self.probe_rtt_round_done:
                    self._check_probe_rtt_done(now)
        if d.rate_delivered > 0:
            self.idle_restart = False

    def _check_probe_rtt_done(self, now: float) -> None:
        if not (self.probe_rtt_done_at and now > self.probe_rtt_done_at):
            return
        self.min_rtt_at = now  # the next PROBE_RTT in ten seconds
        self.cwnd = max(self.cwnd, self.prior_cwnd)
        self._reset_mode(now)

    def _update_gains(self) -> None:
        mode = self.mode
        if mode == STARTUP:
            self.pacing_gain = self.cwnd_gain = HIGH_GAIN
        elif mode == DRAIN:
            self.pacing_gain = DRAIN_GAIN
            self.cwnd_gain = HIGH_GAIN
        elif mode == PROBE_BW:
            self.pacing_gain = 1.0 if self.lt_use_bw else PACING_GAINS[self.cycle_index]
            self.cwnd_gain = CWND_GAIN
        else:
            self.pacing_gain = self.cwnd_gain = 1.0

    # -- long-term (policed) bandwidth --------------------------------------------------

    def _reset_lt_interval(self, delivered: int, lost: int, at: float) -> None:
        self.lt_last_delivered = delivered
        self.lt_last_lost = lost
        self.lt_last_at = at
        self.lt_rounds = 0

    def _reset_lt_sampling(self, delivered: int, lost: int, at: float) -> None:
        self.lt_bw = 0.0
        self.lt_use_bw = False
        self.lt_is_sampling = False
        self._reset_lt_interval(delivered, lost, at)

    def _lt_sampling(
        self, losses: int, app_limited: bool, delivered: int, lost: int, at: float
    ) -> None:
        """A token-bucket policer shows as two sampling intervals, each ended by a
        loss, with over 20 % loss and the same rate: then that rate is the estimate
        for 48 rounds, and the gain stays at 1 (Linux ``bbr_lt_bw_sampling``)."""
        if self.lt_use_bw:
            if self.mode == PROBE_BW and self.round_start:
                self.lt_rounds += 1
                if self.lt_rounds >= LT_BW_MAX_ROUNDS:
                    self._reset_lt_sampling(delivered, lost, at)
                    self._reset_probe_bw_mode(at)
            return
        if not self.lt_is_sampling:
            if not losses:
                return  # wait for the policer to run out of tokens
            self._reset_lt_interval(delivered, lost, at)
            self.lt_is_sampling = True
        if app_limited:
            self._reset_lt_sampling(delivered, lost, at)
            return
        if self.round_start:
            self.lt_rounds += 1
        if self.lt_rounds < LT_INTERVAL_MIN_ROUNDS:
            return
        if self.lt_rounds > 4 * LT_INTERVAL_MIN_ROUNDS:
            self._reset_lt_sampling(delivered, lost, at)
            return
        if not losses:
            return
        interval_lost = lost - self.lt_last_lost
        interval_delivered = delivered - self.lt_last_delivered
        if not interval_delivered or interval_lost < LT_LOSS_THRESH * interval_delivered:
            return
        elapsed = at - self.lt_last_at
        if elapsed < 0.001:
            return
        bw = interval_delivered / elapsed
        if self.lt_bw:
            diff = abs(bw - self.lt_bw)
            if diff <= LT_BW_RATIO * self.lt_bw or diff <= LT_BW_DIFF:
                self.lt_bw = (bw + self.lt_bw) / 2  # policed: use the average
                self.lt_use_bw = True
                self.pacing_gain = 1.0
                self.lt_rounds = 0
                return
        self.lt_bw = bw
        self._reset_lt_interval(delivered, lost, at)

    # -- pacing and the window --------------------------------------------------------------

    def _initial_rate(self) -> float:
        """Before any estimate: the initial window over the smoothed RTT (1 ms if
        there is none yet), at the startup gain."""
        srtt = self.rtt.srtt if self.rtt is not None else None
        return HIGH_GAIN * PACING_MARGIN * self.cwnd / (srtt or 0.001)

    def _set_pacing_rate(self, bw: float, gain: float) -> None:
        rate = bw * gain * PACING_MARGIN
        if not self._has_seen_rtt and self.rtt is not None and self.rtt.srtt:
            self._has_seen_rtt = True
            self._rate = self._initial_rate()
        if self.full_bw_reached or rate > self._rate:
            self._rate = rate

    def min_frame_segments(self) -> int:
        """Linux ``bbr_min_tso_segs``: below 1.2 Mbit/s, one segment per frame."""
        rate = self.pacing_rate or 0.0
        return 1 if rate < MIN_TSO_RATE else 2

    def _frame_segments(self) -> int:
        """Segments per frame the pacing rate gives (``bbr_tso_segs_goal``)."""
        rate = self.pacing_rate or 0.0
        segs = max(int(min(rate / 1024, MAX_FRAME)) // self.mss, self.min_frame_segments())
        return min(segs, 127)

    def _bdp(self, bw: float, gain: float) -> int:
        if self.min_rtt == _NO_RTT:
            return self.initial_window * self.mss  # no RTT sample: be safe
        mss = self.mss
        return -(-int(bw * self.min_rtt * gain) // mss) * mss

    def _quantization_budget(self, cwnd: int) -> int:
        """Room for a full frame in each of the sender's queue, its segmentation
        and the receiver's coalescing; an even number of segments (delayed ACKs);
        and two more in the probing phase so it gets above one BDP."""
        mss = self.mss
        segs = -(-cwnd // mss) + 3 * self._frame_segments()
        segs = (segs + 1) & ~1
        if self.mode == PROBE_BW and self.cycle_index == 0:
            segs += 2
        return segs * mss

    def _inflight(self, bw: float, gain: float) -> int:
        return self._quantization_budget(self._bdp(bw, gain))

    def _in_network_at_edt(self, inflight: int, now: float) -> int:
        """What will still be in the network when the next paced frame leaves: the
        flight, plus that frame when probing, minus what the bandwidth delivers
        until then."""
        wait = max(self.next_departure - now, 0.0)
        delivered = int(self.bandwidth() * wait)
        if self.pacing_gain > 1.0:
            inflight += self._frame_segments() * self.mss
        return max(inflight - delivered, 0)

    def _ack_aggregation_cwnd(self) -> int:
        if not self.full_bw_reached:
            return 0
        most = int(self.bandwidth() * EXTRA_ACKED_MAX_TIME)
        return min(int(EXTRA_ACKED_GAIN * max(self.extra_acked)), most)

    def _save_cwnd(self) -> None:
        """The last good window, to go back to after recovery or PROBE_RTT."""
        if self.prev_ca_state < CA_RECOVERY and self.mode != PROBE_RTT:
            self.prior_cwnd = self.cwnd
        else:  # recovery or PROBE_RTT has already cut it
            self.prior_cwnd = max(self.prior_cwnd, self.cwnd)

    def _recover_or_restore(self, d: Delivery, acked: int) -> int:
        """Loss recovery's window: the first round of recovery sends one segment per
        segment delivered (packet conservation), later rounds at most two; at the
        end of recovery the window before it comes back.  Returns the window, or
        -1 when packet conservation has decided it."""
        cwnd = self.cwnd
        if d.lost_now > 0:
            cwnd = max(cwnd - d.lost_now, self.mss)
        state, prev = d.ca_state, self.prev_ca_state
        if state == CA_RECOVERY and prev != CA_RECOVERY:
            self.packet_conservation = True
            self.next_round_delivered = d.total_delivered  # the round starts now
            cwnd = d.in_flight + acked  # without what the application left unused
        elif prev >= CA_RECOVERY and state < CA_RECOVERY:
            cwnd = max(cwnd, self.prior_cwnd)
            self.packet_conservation = False
        self.prev_ca_state = state
        if self.packet_conservation:
            self.cwnd = max(cwnd, d.in_flight + acked)
            return -1
        return cwnd

    def _set_cwnd(self, d: Delivery, acked: int, now: float) -> None:
        """Grow toward the target (two BDPs plus the allowances) by what was
        delivered, like slow start; once the pipe is known full, never above it."""
        cwnd = self.cwnd
        if acked:
            cwnd = self._recover_or_restore(d, acked)
            if cwnd < 0:
                cwnd = self.cwnd
            else:
                target = self._bdp(self.bandwidth(), self.cwnd_gain)
                target += self._ack_aggregation_cwnd()
                target = self._quantization_budget(target)
                if self.full_bw_reached:
                    cwnd = min(cwnd + acked, target)
                elif cwnd < target or d.total_delivered < self.initial_window * self.mss:
                    cwnd += acked
                cwnd = max(cwnd, CWND_MIN_SEGMENTS * self.mss)
        if self.mode == PROBE_RTT:
            cwnd = min(cwnd, CWND_MIN_SEGMENTS * self.mss)  # drain the queue
        self.cwnd = cwnd


register("bbr", Bbr)
