"""Loss recovery: what is lost, when to resend it, and how far the window falls.

Linux's design in RFC terms.  RACK-TLP (RFC 8985) finds losses from send times
and SACKs, and probes a tail loss after two RTTs instead of waiting for the RTO;
RFC 6675's pipe says how much may be in flight; Proportional Rate Reduction (RFC
6937) paces the window down to ssthresh during recovery.  Without SACK, RFC 6582
NewReno's duplicate-ACK and partial-ACK rules mark what is lost.  An ECN echo
(RFC 3168) reduces the window once per window of data, as a loss would.  The
congestion control algorithm only sets the windows (``aiotcp.core.congestion``).

``LossRecovery`` owns all of that state and the scoreboard (``aiotcp.core.
scoreboard``: what is in flight, SACKed, lost).  The connection tells it events —
a segment sent or resent, an ACK and what it acknowledged, a timer — and asks it
questions: how much may go out now (``room``), what to resend (``next_lost``),
whether a probe is due.  The connection keeps the sequence variables and passes
SND.UNA and SND.MAX in; the recovery keeps nothing of the connection's.
"""

from __future__ import annotations

from typing import Final

from aiotcp.core.congestion.base import CA_LOSS, CA_OPEN, CA_RECOVERY, CongestionControl
from aiotcp.core.counters import Counters
from aiotcp.core.rto import RttEstimator
from aiotcp.core.scoreboard import DUPTHRESH, Delivery, Scoreboard
from aiotcp.core.seq import seq_add, seq_ge, seq_gt, seq_lt, seq_sub
from aiotcp.core.timers import TimerName, Timers

#: RFC 8985 WCDelAckT: the probe timeout's allowance for a delayed ACK of a lone segment.
WORST_CASE_DELAYED_ACK: Final = 0.2


class LossRecovery:
    """The sender's loss detection and congestion response for one connection."""

    __slots__ = (
        "_cwr_due",
        "_dupacks_at_ack",
        "_ecn_recover",
        "_eifel_judged",
        "_frto_at",
        "_frto_end",
        "_in_loss",
        "_max_flight",
        "_max_flight_end",
        "_prr_delivered",
        "_prr_out",
        "_recover",
        "_recover_fs",
        "_tlp_due",
        "_tlp_end",
        "_tlp_retrans",
        "_undo_bytes",
        "_undo_marker",
        "_undo_prior",
        "_undo_unmark",
        "board",
        "cc",
        "counters",
        "dupacks",
        "in_recovery",
        "mss",
        "retrans_stamp",
        "rtt",
        "sack",
        "timers",
    )

    def __init__(
        self,
        cc: CongestionControl,
        rtt: RttEstimator,
        timers: Timers,
        counters: Counters,
        mss: int,
    ) -> None:
        self.cc = cc
        self.rtt = rtt
        self.timers = timers
        """The connection's timers; recovery runs REORDER and LOSS_PROBE on them."""
        self.counters = counters
        """The connection's counters (fast retransmits, TLP probes, D-SACKs ...)."""
        self.mss = mss
        self.sack = False
        """SACK was negotiated: RACK decides, else NewReno's duplicate ACKs do."""
        self.board = Scoreboard(0)
        self.dupacks = 0
        """Duplicate ACKs since the last advance (without SACK: segments that left)."""
        self._dupacks_at_ack = 0
        self.in_recovery = False
        self._recover: int | None = None  # RFC 6582 "recover": SND.MAX when it began
        self._recover_fs = 1  # RFC 6937 RecoverFS
        self._prr_delivered = 0
        self._prr_out = 0
        self._max_flight = 0  # largest flight sent this round trip (cwnd-limited test)
        self._max_flight_end = 0  # the round trip ends when this is acknowledged
        self._tlp_end: int | None = None  # RFC 8985 TLP.end_seq: the probe's episode
        self._tlp_retrans = False  # the probe resent data (not new data)
        self._tlp_due = False  # the probe timer fired: the next output sends a probe
        self._ecn_recover: int | None = None  # one ECN reduction per window of data
        self._cwr_due = False  # reduced for an ECE: the next new data carries CWR
        # Undo (RFC 3708, RFC 3522/4015; Linux's undo_marker and undo_retrans): a
        # reduction episode starts at SND.UNA (unwrapped) with the windows it cost;
        # its retransmitted bytes not yet reported as duplicates (D-SACK) count down.
        self._undo_marker: int | None = None
        self._undo_prior: tuple[int, int, float] | None = None
        self._undo_bytes = 0
        self._undo_unmark = False  # the episode began with an RTO: unmark losses too
        self._eifel_judged = False
        # F-RTO (RFC 5682 §3, as Linux detects it): after a timeout at ``_frto_at``,
        # until SND.MAX of then (``_frto_end``) is acknowledged.
        self._frto_at: float | None = None
        self._frto_end: int | None = None
        self._in_loss = False  # after an RTO, until what was then sent is acknowledged
        self.retrans_stamp: int | None = None
        """RFC 3522 RetransmitTS: the TSval of the episode's first retransmission (the
        connection sets it; None without timestamps or before a retransmission)."""

    def reset(self, iss: int) -> None:
        """The send sequence starts at ``iss``."""
        self.board.reset(iss)
        self._max_flight_end = iss

    def set_mss(self, mss: int) -> None:
        self.mss = mss
        self.board.set_mss(mss)

    # ------------------------------------------------------------------ sending

    def on_sent(self, seq: int, length: int, snd_una: int, now: float) -> None:
        """New data (or a FIN) left at ``seq``."""
        self.board.on_sent(seq, length, now)
        if self.in_recovery:
            self._prr_out += length  # RFC 6937 prr_out: everything sent in recovery
        # Linux ``tcp_cwnd_validate``: the largest flight of the last round trip.
        end = seq_add(seq, length)
        flight = seq_sub(end, snd_una)
        if flight > self._max_flight or seq_ge(snd_una, self._max_flight_end):
            self._max_flight = flight
            self._max_flight_end = end

    def on_retransmitted(self, seq: int, length: int, now: float) -> None:
        self.board.on_retransmitted(seq, length, now)
        if self.in_recovery:
            self._prr_out += length
        if self._undo_marker is not None:
            self._undo_bytes += length

    def take_cwr(self) -> bool:
        """Should this new data segment carry CWR (RFC 3168 §6.1.2)?  Once per reduction."""
        due, self._cwr_due = self._cwr_due, False
        return due

    @property
    def cwr_due(self) -> bool:
        return self._cwr_due

    def room(self) -> int:
        """Bytes the congestion window lets out now: cwnd − pipe (RFC 6675 §5)."""
        return self.cc.cwnd - self.pipe()

    def pipe(self) -> int:
        """RFC 6675 pipe; without SACK each duplicate ACK stands for one segment that
        left the network (Linux's emulated ``sacked_out``, at most all but one)."""
        board = self.board
        pipe = board.pipe()
        if not self.sack and self.dupacks:
            pipe -= min(self.dupacks * self.mss, max(board.outstanding - self.mss, 0))
        return max(pipe, 0)

    def next_lost(self) -> tuple[int, int] | None:
        """The lowest range marked lost, at most an MSS: (seq, length)."""
        return self.board.next_lost(self.mss)

    @property
    def lost_bytes(self) -> int:
        return self.board.lost_bytes

    def network_empty(self) -> bool:
        """Nothing is believed in the network (RFC 6675 pipe, by the scoreboard alone):
        a retransmission may go even without room (after an RTO)."""
        return self.board.pipe() == 0

    def oldest_sent_at(self) -> float | None:
        """When the oldest data in flight was sent (None: nothing in flight)."""
        records = self.board.records
        return records[0].sent_at if records else None

    @property
    def in_flight(self) -> bool:
        return bool(self.board.records)

    @property
    def ca_state(self) -> int:
        """Linux's ``icsk_ca_state`` (the states BBR tells apart): after an RTO
        (Loss) until its window is acknowledged, fast recovery, or Open."""
        if self._in_loss:
            return CA_LOSS
        return CA_RECOVERY if self.in_recovery else CA_OPEN

    def check_app_limited(self, unsent: int) -> None:
        """After sending: less than a segment is left to send, the window is not
        full and nothing lost waits to go again, so the application, not the
        path, limits what is in flight (Linux ``tcp_rate_check_app_limited``)."""
        board = self.board
        if unsent < self.mss and board.lost_bytes <= board.retrans_bytes:
            pipe = self.pipe()
            if pipe < self.cc.cwnd:
                board.mark_app_limited(pipe)

    # ------------------------------------------------------------------ ACKs

    def on_ack(
        self, ack: int, sack_blocks: tuple[tuple[int, int], ...], snd_max: int, now: float
    ) -> Delivery:
        """What an acceptable ACK says arrived (the scoreboard's account of it)."""
        self._dupacks_at_ack = self.dupacks
        prior_pipe = self.pipe() if self.cc.controls_window else 0
        events = self.board.reorder_events
        delivery = self.board.on_ack(ack, sack_blocks, now, snd_max)
        delivery.prior_in_flight = prior_pipe
        if self.board.reorder_events != events:
            self.counters.sack_reorder += 1  # Linux TCPSACKReorder
        if delivery.dsack:
            self.counters.dsacks_received += 1
            if self._tlp_end is not None and self._tlp_retrans:
                self._tlp_end = None  # RFC 8985 §7.4.2: the probe was a duplicate
            marker = self._undo_marker
            if marker is not None and self._undo_bytes > 0 and delivery.dsack_start >= marker:
                # RFC 3708 §3: each retransmission reported as a duplicate was needless;
                # once all of the episode's were, so was its reduction.
                self._undo_bytes -= delivery.dsack_bytes
                if self._undo_bytes <= 0:
                    self.counters.undo_dsack += 1
                    self._undo()
        if self._frto_at is not None:
            self._frto(ack, delivery)
        return delivery

    def _frto(self, ack: int, delivery: Delivery) -> None:
        """RFC 5682 §3 step 3b, as Linux tests it on every ACK after a timeout: data
        sent before the timeout and never retransmitted was (S)ACKed, so not all of
        it was lost — the timeout was spurious (a delay, or lost ACKs), and the
        reduction and the wholesale loss marks are undone."""
        at, end = self._frto_at, self._frto_end
        orig = delivery.oldest_original_at
        if at is not None and orig is not None and orig < at:
            self.counters.undo_frto += 1
            self._undo()
        elif end is not None and seq_ge(ack, end):
            self._frto_at = self._frto_end = None  # all of it acknowledged: it was real

    def eifel(self, ack: int, echoed_before_retransmit: bool) -> None:
        """RFC 3522 §2: the first ACK for the retransmitted data.  If it echoes a
        timestamp older than the retransmission's, the original arrived and the
        retransmission (and the reduction) was spurious: RFC 4015's response undoes
        it.  Either way the episode's first ACK has been judged."""
        marker = self._undo_marker
        if self.retrans_stamp is None or marker is None or self.board.position(ack) <= marker:
            return
        self.retrans_stamp = None
        self._eifel_judged = True
        if echoed_before_retransmit:
            if not self._undo_unmark:
                # A fast retransmit, and the original filled the hole: the path
                # reordered it below everything delivered so far (Linux
                # ``tcp_try_undo_partial``, TCPTSReorder).  Before the ACK is applied.
                board = self.board
                board.note_reordering(max(board.fack, board.position(ack)) - marker)
                self.counters.ts_reorder += 1
            self.counters.undo_eifel += 1
            self._undo()

    def _start_undo_episode(self, snd_una: int, *, rto: bool) -> None:
        """A reduction is about to happen: remember what it costs.  The callers keep an
        episode already under way (a timeout during recovery, a repeated one)."""
        self._undo_marker = self.board.position(snd_una)
        self._undo_prior = self.cc.undo_state()
        self._undo_bytes = 0
        self._undo_unmark = rto
        self.retrans_stamp = None
        self._eifel_judged = False

    def note_retransmit_ts(self, seq: int, ts_val: int) -> None:
        """The TSval a retransmission at ``seq`` carried.  RFC 3522's RetransmitTS is
        that of the retransmitted *oldest outstanding* segment, the one at the
        episode's marker: the ACK that first passes the marker answers it.  A
        segment there may have gone again before the episode began (a recovery that
        ended with a retransmitted hole above its recovery point); then the episode's
        first retransmission is of a later hole, its TSval is newer than anything
        the ACK for the old hole can echo, and taking it would call every such
        episode spurious."""
        marker = self._undo_marker
        if (
            marker is not None
            and self.retrans_stamp is None
            and not self._eifel_judged
            and self.board.position(seq) == marker
        ):
            self.retrans_stamp = ts_val

    def _undo(self) -> None:
        """RFC 3708 / RFC 4015 §3: give the reduction back and end the episode (and the
        recovery it began: the losses were reordering or a delay, not congestion).
        After a spurious timeout the ranges still waiting to go again are in flight
        after all (RFC 4015 §3.2: no go-back-N)."""
        prior = self._undo_prior
        if prior is not None:
            self.cc.undo(prior)
        if self.in_recovery:
            self.in_recovery = False
            self.board.on_recovery_done()
        if self._undo_unmark:
            self.board.unmark_lost()
        self._recover = None
        self._in_loss = False
        self._undo_marker = None
        self._undo_prior = None
        self._undo_bytes = 0
        self.retrans_stamp = None
        self._frto_at = self._frto_end = None

    def on_new_ack(self, ack: int, acked: int, flight: int, now: float) -> None:
        """SND.UNA advanced to ``ack`` by ``acked`` bytes of a ``flight`` (RFC 5681 §3,
        RFC 6582 §3.2, RFC 6937)."""
        if self._in_loss and self._recover is not None and seq_ge(ack, self._recover):
            self._in_loss = False
        if self.in_recovery:
            if self._recover is not None and seq_ge(ack, self._recover):
                self._exit_recovery(flight - acked)
        elif 2 * self._max_flight >= self.cc.cwnd:
            # Grow cwnd only while it limits us (RFC 7661 §4.2, Linux
            # ``tcp_is_cwnd_limited``): an application-limited sender must not
            # build up a window the path never carried.  The flight is the largest
            # of the last round trip, as sent — not what is left when a batch of
            # ACKs is being processed, or slow start would stall under batching.
            self.cc.on_ack(acked, flight, now)
        if self.in_recovery and not self.sack:
            # A partial ACK covers the retransmission and what arrived after it: the
            # duplicate ACKs beyond those still stand for segments that left (Linux
            # ``tcp_remove_reno_sacks``), or pipe would ignore them and stall.
            segments = -(-acked // self.mss)
            self.dupacks = max(self.dupacks - (segments - 1), 0)
            self._check_reno_reordering(segments)
        else:
            self.dupacks = 0

    def on_duplicate_ack(self) -> None:
        """An ACK that RFC 5681 §2 (or RFC 6675 §2, with new SACK blocks) calls a
        duplicate."""
        self.dupacks += 1
        self.counters.dup_acks += 1
        if not self.sack:
            self._check_reno_reordering(0)

    def _check_reno_reordering(self, acked_segments: int) -> None:
        """Without SACK, Linux ``tcp_check_reno_reordering``: more duplicate ACKs than
        the segments in flight, less the holes, could cause means segments arrived out
        of order; the degree rises to the segments in flight (plus those this ACK
        covered).  Unlike Linux, it never lowers the degree."""
        board = self.board
        mss = self.mss
        outstanding = -(-board.outstanding // mss)
        holes = min(max(-(-board.lost_bytes // mss), 1), outstanding)
        if self.dupacks + holes > outstanding:
            board.note_reordering_segments(outstanding + acked_segments)
            self.counters.reno_reorder += 1

    def after_ack(
        self,
        ack: int,
        advanced: bool,
        delivery: Delivery,
        snd_una: int,
        snd_max: int,
        send_pending: bool,
        now: float,
    ) -> bool:
        """The ACK is processed: end a probe episode, look for losses, enter recovery
        or pace it (PRR), and re-arm the probe timer.  True if recovery began (the
        segment being timed for an RTT sample may be one that goes again)."""
        if self._tlp_end is not None and seq_ge(ack, self._tlp_end):
            self._end_tlp_episode(snd_una, snd_max, now)
        board = self.board
        if not self.sack:
            newly_lost = self._dupack_losses(advanced, snd_una, snd_max, send_pending)
        elif board.sacked_bytes or board.lost_bytes or self.in_recovery:
            newly_lost = self._rack_detect(now)
        else:
            newly_lost = 0
        entered = bool(newly_lost) and not self.in_recovery
        if entered:
            entered = self._enter_recovery(snd_una, snd_max, now)
        if self.in_recovery:
            delivered = delivery.delivered
            if not self.sack:
                # No SACK: each duplicate ACK is a segment that left; a partial ACK
                # delivers what those did not already account for.
                if advanced:
                    delivered = max(delivered - (self._dupacks_at_ack - self.dupacks) * self.mss, 0)
                else:
                    delivered = self.mss
            self._prr_update(delivered)
        if advanced or delivery.sacked:
            self._tlp_due = False
            self.arm_loss_probe(snd_una, snd_max, now)  # RFC 8985 §7.2: every ACK of progress
        if self.cc.controls_window:
            self._rate_sample(delivery, newly_lost, now)
        return entered

    def _rate_sample(self, d: Delivery, newly_lost: int, now: float) -> None:
        """Hand the ACK's account to an algorithm that sets the window itself."""
        board = self.board
        d.lost_now = newly_lost
        d.in_flight = self.pipe()
        d.ca_state = self.ca_state
        d.total_delivered = board.delivered
        d.total_lost = board.lost_total
        d.delivered_at = board.delivered_at
        self.cc.on_rate_sample(d, now)
        if d.mark_app_limited:
            board.mark_app_limited(d.in_flight)

    def on_ecn_echo(self, snd_una: int, snd_max: int, now: float) -> None:
        """RFC 3168 §6.1.2: a router marked our data: reduce as for a loss (but send
        nothing again), at most once per window of data, then tell the peer (CWR)."""
        if self.in_recovery or snd_una == snd_max:
            return
        if self._ecn_recover is not None and seq_lt(snd_una, self._ecn_recover):
            return
        flight = seq_sub(snd_max, snd_una)
        self.cc.on_enter_recovery(flight, now)
        self.cc.on_exit_recovery(flight)
        self._ecn_recover = snd_max
        self._cwr_due = True
        self.counters.ecn_reductions += 1

    # ------------------------------------------------------------------ loss detection

    def _dupack_losses(self, advanced: bool, snd_una: int, snd_max: int, send_pending: bool) -> int:
        """Without SACK information, RFC 5681/6582: the segment at SND.UNA is lost after
        DupThresh duplicate ACKs, and again after each partial ACK in recovery."""
        board = self.board
        if advanced:
            if self.in_recovery:
                return board.mark_head_lost(self.mss)  # RFC 6582 §3.2 step 5
            return 0
        if self.in_recovery or self.dupacks != self._dupack_threshold(
            snd_una, snd_max, send_pending
        ):
            return 0
        if self._recover is not None and not seq_gt(snd_una, self._recover):
            # RFC 6582 §3.2 step 2: not for the window an RTO already dealt with.
            return 0
        return board.mark_head_lost(self.mss)

    def _dupack_threshold(self, snd_una: int, snd_max: int, send_pending: bool) -> int:
        """The reordering degree (3, RFC 5681's DupThresh, until the path is seen to
        reorder more: Linux's ``tcp_newreno_mark_lost`` tests ``tp->reordering``),
        lowered by early retransmit (RFC 5827 §3.1) when fewer than four segments are
        outstanding and nothing new could produce more ACKs."""
        outstanding = -(-seq_sub(snd_max, snd_una) // self.mss)
        if outstanding < 4 and not send_pending:
            return max(outstanding - 1, 1)
        return self.board.reordering

    def _rack_detect(self, now: float) -> int:
        """RFC 8985 §6.2: mark losses; arm the reordering timer for the undecided."""
        board = self.board
        srtt = self.rtt.srtt if self.rtt.srtt is not None else self.rtt.rto
        lost, wait = board.detect_lost(now, board.reo_wnd(srtt, self.in_recovery))
        if wait is not None:
            self.timers.set(TimerName.REORDER, now + wait)
        else:
            self.timers.cancel(TimerName.REORDER)
        return lost

    def on_reorder_timer(self, snd_una: int, snd_max: int, now: float) -> bool:
        """RFC 8985 §6.3: the reordering window of an undecided segment ran out.
        True if recovery began."""
        entered = False
        if self._rack_detect(now) and not self.in_recovery:
            entered = self._enter_recovery(snd_una, snd_max, now)
        if self.in_recovery:
            self._prr_update(0)
        return entered

    def mark_all_lost(self) -> None:
        """Everything in flight goes again (path MTU dropped: resend smaller)."""
        self.board.mark_all_lost()

    # ------------------------------------------------------------------ recovery

    def _enter_recovery(self, snd_una: int, snd_max: int, now: float) -> bool:
        """A loss was found: reduce once per window of data (RFC 6582 §3.2 step 2)."""
        if self._recover is not None and not seq_gt(snd_una, self._recover):
            return False  # still repairing the window an RTO or a recovery reduced for
        flight = seq_sub(snd_max, snd_una)
        self._recover = snd_max
        self.in_recovery = True
        self._start_undo_episode(snd_una, rto=False)
        if self._ecn_recover is None or seq_ge(snd_una, self._ecn_recover):
            self.cc.on_enter_recovery(flight, now)
        # else: an ECN echo already reduced for this window (RFC 3168 §6.1.2)
        self._prr_delivered = 0
        self._prr_out = 0
        self._recover_fs = max(flight, 1)  # RFC 6937 RecoverFS
        self.counters.fast_retransmits += 1
        self._tlp_end = None
        return True

    def _exit_recovery(self, flight: int) -> None:
        self.in_recovery = False
        self.cc.on_exit_recovery(flight)
        self.board.on_recovery_done()

    def _prr_update(self, delivered: int) -> None:
        """RFC 6937 Proportional Rate Reduction: how much may go out on this ACK, as
        the window ``pipe + sndcnt`` (Linux ``tcp_cwnd_reduction``)."""
        self._prr_delivered += delivered
        if self.cc.controls_window:
            return  # the algorithm sets the window on this ACK (``_rate_sample``)
        pipe = self.pipe()
        ssthresh = self.cc.ssthresh
        if pipe > ssthresh:
            sndcnt = -(-self._prr_delivered * ssthresh // self._recover_fs) - self._prr_out
        else:  # PRR-SSRB: slow start back up to ssthresh
            limit = max(self._prr_delivered - self._prr_out, delivered) + self.mss
            sndcnt = min(ssthresh - pipe, limit)
        if self._prr_out == 0 and self.board.lost_bytes:
            sndcnt = max(sndcnt, self.mss)  # the fast retransmit goes out at once
        self.cc.cwnd = pipe + max(sndcnt, 0)

    def on_retransmit_timeout(self, snd_una: int, snd_max: int, retries: int, now: float) -> None:
        """RFC 6298 §5.5-5.6 and RFC 8985 §6.3 for data: the window collapses and
        everything not SACKed is lost, to go again in order."""
        reduced = self.in_recovery or (self._recover is not None and seq_lt(snd_una, self._recover))
        if not reduced:
            # Linux tcp_enter_loss: DupThresh segments were SACKed (or duplicate ACKs
            # came) and still no recovery began before the timeout: the reordering
            # degree held it off and was set too high.
            evidence = self.board.sacked_bytes if self.sack else self.dupacks * self.mss
            if evidence >= DUPTHRESH * self.mss:
                self.board.limit_reordering()
        if not reduced and retries <= 1:
            self._start_undo_episode(snd_una, rto=True)
        elif self._undo_marker is not None:
            self._undo_unmark = True  # a timeout in the episode: losses marked wholesale
        if retries > 1 or reduced:
            # RFC 5681 §3.1: a segment already resent by a timeout holds ssthresh;
            # as Linux (tcp_enter_loss), neither does a window already reduced.
            self.cc.on_repeated_timeout(now)
        else:
            self.cc.on_timeout(seq_sub(snd_max, snd_una), now)
        # RFC 6582 §3.2 step 4: no fast recovery for what was sent before now.
        self._recover = snd_max
        self._in_loss = True
        if self._frto_at is None:
            self._frto_at, self._frto_end = now, snd_max  # RFC 5682 §3 step 1
        if self.in_recovery:
            self.in_recovery = False
            self.board.on_recovery_done()
        # RFC 8985 §6.3: everything not SACKed is lost and goes again, in order,
        # as the (now one-segment) window allows; SACKed data is not resent.
        self.board.mark_all_lost()
        self.dupacks = 0
        self._tlp_end = None
        self._tlp_due = False
        self.timers.cancel(TimerName.LOSS_PROBE)
        self.timers.cancel(TimerName.REORDER)

    # ------------------------------------------------------------------ tail loss probe

    def _tlp_allowed(self, snd_una: int, snd_max: int) -> bool:
        """RFC 8985 §7.2: with SACK, one probe at a time.

        A deviation: RFC 8985 probes only outside recovery; aiotcp also probes in
        recovery (one segment, the first lost range, after 2·SRTT without an ACK).
        At high loss the whole flight, retransmissions included, is often lost, and
        then only the RTO with its backoff was left (docs/performance.md)."""
        return self.sack and self._tlp_end is None and snd_una != snd_max

    def _tlp_timeout(self, snd_una: int, snd_max: int, now: float) -> float | None:
        """RFC 8985 §7.2 PTO: two SRTTs, plus a delayed-ACK allowance for a lone
        segment; None if the RTO would come first or a probe makes no sense."""
        srtt = self.rtt.srtt
        if srtt is None or not self._tlp_allowed(snd_una, snd_max):
            return None
        pto = 2 * srtt
        if seq_sub(snd_max, snd_una) <= self.mss:
            pto += WORST_CASE_DELAYED_ACK
        else:
            pto += 0.002
        rto_at = self.timers.get(TimerName.RETRANSMIT)
        if rto_at is not None and now + pto >= rto_at:
            return None
        return pto

    def arm_loss_probe(self, snd_una: int, snd_max: int, now: float) -> None:
        pto = self._tlp_timeout(snd_una, snd_max, now)
        if pto is None:
            self.timers.cancel(TimerName.LOSS_PROBE)
        else:
            self.timers.set(TimerName.LOSS_PROBE, now + pto)

    def on_probe_timer(self, snd_una: int, snd_max: int, synchronized: bool) -> None:
        """The probe timeout passed without an ACK: the next output sends a probe."""
        self._tlp_due = synchronized and self._tlp_allowed(snd_una, snd_max)

    def take_probe_due(self) -> bool:
        """Is a loss probe due (once: the caller sends it)?"""
        due, self._tlp_due = self._tlp_due, False
        return due

    def probe_resend(self, snd_una: int, snd_max: int) -> tuple[int, int] | None:
        """In recovery the useful probe repairs the lowest hole, never SACKed data:
        that range, else None (then new data, or the last segment again)."""
        board = self.board
        if board.lost_bytes or board.sacked_bytes:
            return board.next_lost(self.mss) or board.first_unsacked(self.mss)
        return None

    def on_probe_sent(self, snd_max: int, retransmission: bool) -> None:
        """RFC 8985 §7.3: a probe went out; its ACK ends the episode."""
        self._tlp_end = snd_max
        self._tlp_retrans = retransmission
        self.counters.tlp_probes += 1

    def _end_tlp_episode(self, snd_una: int, snd_max: int, now: float) -> None:
        """RFC 8985 §7.4.2: the probe's ACK arrived.  A retransmitted probe that was not
        reported as a duplicate repaired a real loss: reduce the window once."""
        if self._tlp_retrans and not self.in_recovery:
            flight = seq_sub(snd_max, snd_una)
            self.cc.on_enter_recovery(flight, now)
            self.cc.on_exit_recovery(flight)
        self._tlp_end = None
