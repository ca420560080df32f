"""What is in flight, what the peer has, what is lost: RFC 6675's scoreboard with
RACK's time-based loss detection (RFC 8985 §6).

The sender keeps one record per range of sequence space sent together (a whole
run of segments built at the same instant is one record, as Linux keeps one skb
per GSO super-segment).  Records are split where SACK blocks, cumulative ACKs or
retransmissions cut them, so each record always has one fate: in flight, SACKed,
or marked lost; and one transmission time.  From that:

* ``pipe`` — RFC 6675's estimate of bytes still in the network (Linux's
  ``tcp_packets_in_flight`` in bytes): outstanding − SACKed − lost + retransmitted;
* RACK: a segment is lost when a segment sent *after* it has been delivered and
  more than an RTT plus a reordering window has passed since it was sent.  Unlike
  counting duplicate ACKs, this also finds lost retransmissions and tail losses
  without waiting for the retransmission timer;
* D-SACK reports (RFC 2883) widen the reordering window (RFC 8985 §6.2 step 4),
  so a path that reorders stops causing spurious retransmissions.

Positions are kept unwrapped (plain ints counted from the first byte ever sent),
so records compare with ``<`` and the sequence-space wrap is handled once, at the
boundary, in ``_abs``.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Final

from aiotcp.core.seq import MASK, seq_sub

SACKED: Final = 1
"""The peer holds this range (a SACK block covered it)."""
LOST: Final = 2
"""Marked lost and not retransmitted since: waiting for its retransmission."""
RETRANS: Final = 4
"""Retransmitted and that retransmission still in flight (counts in ``pipe``)."""
EVER_RETRANS: Final = 8
"""Retransmitted at least once: its delivery time is ambiguous (Karn)."""

#: RFC 8985 §6.2 (RFC 5681's DupThresh): SACKed segments that are evidence enough,
#: and the reordering degree a connection starts with (Linux ``tcp_reordering``).
DUPTHRESH: Final = 3
#: The highest reordering degree, in segments (Linux ``tcp_max_reordering``).
MAX_REORDERING: Final = 300
#: RFC 8985 §6.2: the reordering window stays widened for 16 loss recoveries.
REO_WND_PERSIST: Final = 16


class Sent:
    """One range ``[start, end)`` of sequence space and when it last went out.

    ``order`` counts transmissions: RACK asks which segment was sent *after*
    which, and a clock cannot say when a retransmission and new data leave in
    the same instant (always, in one run); within one order the sequence
    decides, which is right because a run sends its range in sequence order."""

    __slots__ = (
        "app_limited",
        "delivered",
        "delivered_at",
        "end",
        "first_sent_at",
        "flags",
        "order",
        "sent_at",
        "start",
    )

    def __init__(self, start: int, end: int, sent_at: float, order: int, flags: int = 0) -> None:
        self.start = start
        self.end = end
        self.sent_at = sent_at
        self.order = order
        self.flags = flags
        # Delivery-rate estimation (Linux ``tcp_rate_skb_sent``): the connection's
        # delivered count and its time, and the send time of the flight's first
        # range, when this range went out; and whether the sender was then short of
        # data (a rate measured over it says more about the application).
        self.delivered = 0
        self.delivered_at = 0.0
        self.first_sent_at = 0.0
        self.app_limited = False

    def split(self, at: int) -> Sent:
        """Cut at ``at``: this record keeps ``[start, at)``, the tail is returned."""
        tail = Sent(at, self.end, self.sent_at, self.order, self.flags)
        tail.delivered = self.delivered
        tail.delivered_at = self.delivered_at
        tail.first_sent_at = self.first_sent_at
        tail.app_limited = self.app_limited
        self.end = at
        return tail

    def __repr__(self) -> str:
        return (
            f"Sent({self.start}, {self.end}, {self.sent_at:.6f}, #{self.order}, flags={self.flags})"
        )


class Delivery:
    """What one ACK told us: the inputs of PRR, RACK and the RTT estimator."""

    __slots__ = (
        "acked",
        "ca_state",
        "delivered",
        "delivered_at",
        "dsack",
        "dsack_bytes",
        "dsack_start",
        "first_acked_at",
        "in_flight",
        "lost_now",
        "mark_app_limited",
        "newest_sacked_at",
        "oldest_original_at",
        "prior_in_flight",
        "rate_app_limited",
        "rate_delivered",
        "rate_end",
        "rate_interval",
        "rate_order",
        "rate_prior_at",
        "rate_prior_delivered",
        "rate_rtt",
        "rate_send_elapsed",
        "rexmit_acked",
        "sacked",
        "total_delivered",
        "total_lost",
    )

    def __init__(self) -> None:
        self.acked = 0  # bytes newly covered by the cumulative ACK (SACKed before or not)
        # RFC 6937 DeliveredData (Linux ``newly_acked_sacked``): bytes this ACK newly
        # told were delivered — cumulatively ACKed bytes already SACKed count once.
        self.delivered = 0
        self.sacked = 0  # bytes newly covered by SACK blocks
        self.dsack = False  # the ACK carried a D-SACK block
        self.dsack_start = 0  # ... where it starts (unwrapped) and how long it is
        self.dsack_bytes = 0
        # RTT evidence (Linux ``tcp_clean_rtx_queue``): when the oldest newly
        # acknowledged never-retransmitted range was sent, whether retransmitted data
        # was acknowledged (Karn), when the newest newly SACKed range was sent.
        self.first_acked_at: float | None = None
        self.rexmit_acked = False
        self.newest_sacked_at: float | None = None
        # F-RTO's evidence: when the oldest newly (S)ACKed never-retransmitted range left.
        self.oldest_original_at: float | None = None
        # The delivery-rate sample (draft-cheng-iccrg-delivery-rate-estimation, Linux
        # ``tcp_rate.c``), taken over the most recently sent range this ACK delivered:
        # what the connection had delivered when that range left (-1: none), and when;
        # the rate is then (delivered since) / max(send interval, ACK interval).
        self.rate_prior_delivered = -1
        self.rate_prior_at = 0.0
        self.rate_send_elapsed = 0.0
        self.rate_app_limited = False
        self.rate_order = -1
        self.rate_end = 0
        self.rate_rtt = -1.0  # that range's RTT, -1 if it was retransmitted (Karn)
        self.rate_delivered = -1  # bytes in the sample; -1: no valid sample
        self.rate_interval = 0.0
        # What a ``controls_window`` algorithm also hears (Linux's ``rate_sample``
        # and the socket's counters), filled in by the recovery for it alone: the
        # connection's totals of bytes delivered and lost and the time of the last
        # delivery, bytes newly marked lost, pipe before and after this ACK, the
        # recovery state; and its request to treat the coming samples as
        # application-limited (PROBE_RTT's).
        self.total_delivered = 0
        self.total_lost = 0
        self.delivered_at = 0.0
        self.lost_now = 0
        self.prior_in_flight = 0
        self.in_flight = 0
        self.ca_state = 0
        self.mark_app_limited = False

    @property
    def delivery_rate(self) -> float:
        """Bytes per second this ACK's sample measured (0: no valid sample)."""
        if self.rate_delivered < 0 or self.rate_interval <= 0:
            return 0.0
        return self.rate_delivered / self.rate_interval

    def rtt(self, now: float) -> float | None:
        """An unambiguous RTT sample from this ACK, if it carries one."""
        if self.first_acked_at is not None and not self.rexmit_acked:
            return now - self.first_acked_at
        if self.newest_sacked_at is not None:
            return now - self.newest_sacked_at
        return None


class Scoreboard:
    """Transmission records of one connection, in sequence order."""

    __slots__ = (
        "_order",
        "_una",
        "_una_abs",
        "app_limited",
        "delivered",
        "delivered_at",
        "dsack_round",
        "dupthresh_bytes",
        "fack",
        "first_sent_at",
        "lost_bytes",
        "lost_total",
        "min_rtt",
        "mss",
        "rack_end",
        "rack_order",
        "rack_rtt",
        "rate_app_limited",
        "rate_delivered",
        "rate_interval",
        "records",
        "reo_wnd_mult",
        "reo_wnd_persist",
        "reorder_events",
        "reordering",
        "reordering_seen",
        "retrans_bytes",
        "sacked_bytes",
    )

    def __init__(self, una: int) -> None:
        self.records: list[Sent] = []
        self._una = una  # SND.UNA (wrapping) and its unwrapped position
        self._una_abs = 0
        self.sacked_bytes = 0
        self.lost_bytes = 0
        self.retrans_bytes = 0
        self.fack = 0  # highest unwrapped position known delivered (RFC 8985 RACK.fack)
        self._order = 0  # transmissions so far (see ``Sent.order``)
        # RACK (RFC 8985 §6.1): the most recently sent segment among those delivered.
        self.rack_order = -1
        self.rack_end = 0
        self.rack_rtt = 0.0
        self.min_rtt = float("inf")
        self.reordering_seen = False
        self.reo_wnd_mult = 1
        self.reo_wnd_persist = 0
        #: The path's reordering degree in segments (Linux ``tp->reordering``): how far
        #: below the highest delivered data a segment has been seen to arrive late.
        self.reordering = DUPTHRESH
        self.reorder_events = 0  # reorderings the (S)ACKs revealed (``_check_reordering``)
        self.mss = 536
        self.dsack_round: int | None = None
        #: RFC 8985's DupThresh, the reordering degree, in bytes of the MSS (``set_mss``).
        self.dupthresh_bytes = DUPTHRESH * 536
        # Delivery-rate estimation (Linux ``tp->delivered``, ``delivered_mstamp``,
        # ``first_tx_mstamp``, ``app_limited``): bytes delivered so far and when the
        # last of them was; when the range that opened the current sample left; and
        # while the sender is application-limited, the delivered count at which that
        # bubble will have left the network (0: not limited).
        self.delivered = 0
        self.delivered_at = 0.0
        self.first_sent_at = 0.0
        self.app_limited = 0
        self.lost_total = 0  # bytes ever marked lost (Linux ``tp->lost``)
        # The rate ``info()`` reports (Linux ``tcpi_delivery_rate``): the last sample
        # not limited by the application, or a limited one that shows more.
        self.rate_delivered = 0
        self.rate_interval = 0.0
        self.rate_app_limited = False

    def set_mss(self, mss: int) -> None:
        """The connection's send MSS changed (negotiated, or lowered by PMTUD)."""
        self.mss = mss
        self.dupthresh_bytes = self.reordering * mss

    # ------------------------------------------------------------------ positions

    def _abs(self, seq: int) -> int:
        return self._una_abs + seq_sub(seq, self._una)

    def position(self, seq: int) -> int:
        """Sequence number ``seq`` as an unwrapped position (see the module docstring)."""
        return self._abs(seq)

    def seq(self, pos: int) -> int:
        """The wrapping sequence number of unwrapped position ``pos``."""
        return (self._una + (pos - self._una_abs)) & MASK

    @property
    def outstanding(self) -> int:
        recs = self.records
        return recs[-1].end - recs[0].start if recs else 0

    def pipe(self) -> int:
        """RFC 6675 §4 "pipe" in bytes."""
        return self.outstanding - self.sacked_bytes - self.lost_bytes + self.retrans_bytes

    # ------------------------------------------------------------------ sending

    def on_sent(self, seq: int, length: int, now: float) -> None:
        """New data (or FIN) left: extend the last record when sent in the same run."""
        start = self._abs(seq)
        recs = self.records
        if recs:
            last = recs[-1]
            if (
                last.end == start
                and last.order == self._order
                and last.sent_at == now
                and not last.flags
            ):
                last.end = start + length
                return
        else:
            # Nothing in flight: a new sample starts here (``tcp_rate_skb_sent``).
            self.first_sent_at = self.delivered_at = now
        self._order += 1
        rec = Sent(start, start + length, now, self._order)
        self._stamp(rec)
        recs.append(rec)

    def _stamp(self, rec: Sent) -> None:
        """Record the delivery state a range leaves with (sent or resent)."""
        rec.delivered = self.delivered
        rec.delivered_at = self.delivered_at
        rec.first_sent_at = self.first_sent_at
        rec.app_limited = self.app_limited != 0

    def mark_app_limited(self, pipe: int) -> None:
        """The sender ran short of data with room in the window (Linux
        ``tcp_rate_check_app_limited``): rate samples until what is in flight now has
        been delivered say how fast the application wrote, not what the path carries."""
        self.app_limited = (self.delivered + pipe) or 1

    def on_retransmitted(self, seq: int, length: int, now: float) -> None:
        """``[seq, seq+length)`` went out again: it is back in flight, sent at ``now``."""
        start = self._abs(seq)
        end = start + length
        self._order += 1
        for rec in self._cut(start, end):
            if rec.flags & SACKED:
                continue
            # As Linux: a retransmitted lost range stays "lost" (the original is
            # gone) and also counts as retransmitted, so it is in ``pipe`` once.
            if not rec.flags & RETRANS:
                self.retrans_bytes += rec.end - rec.start
            rec.flags |= RETRANS | EVER_RETRANS
            rec.sent_at = now
            rec.order = self._order
            self._stamp(rec)

    def _cut(self, start: int, end: int) -> list[Sent]:
        """The records covering ``[start, end)``, split so none sticks out of it."""
        recs = self.records
        i = bisect_right(recs, start, key=_start) - 1
        if i < 0:
            i = 0
        out: list[Sent] = []
        while i < len(recs):
            rec = recs[i]
            if rec.start >= end:
                break
            if rec.end <= start:
                i += 1
                continue
            if rec.start < start:
                recs.insert(i + 1, rec.split(start))
                i += 1
                continue
            if rec.end > end:
                recs.insert(i + 1, rec.split(end))
            out.append(rec)
            i += 1
        return out

    # ------------------------------------------------------------------ ACKs

    def on_ack(
        self, ack: int, blocks: tuple[tuple[int, int], ...], now: float, snd_max: int
    ) -> Delivery:
        """Apply a cumulative ACK and its SACK blocks; RACK learns from what arrived."""
        d = Delivery()
        ack_abs = self._abs(ack)
        max_abs = self._abs(snd_max)
        self._check_reordering(ack_abs, blocks, max_abs)
        prior_fack = self.fack
        for i, (left, right) in enumerate(blocks):
            lo, hi = self._abs(left), self._abs(right)
            if i == 0 and self._is_dsack(lo, hi, ack_abs, blocks):
                d.dsack = True
                d.dsack_start, d.dsack_bytes = lo, max(hi - lo, 0)
                continue
            if not (lo < hi <= max_abs and hi > ack_abs):
                continue
            for rec in self._cut(max(lo, ack_abs), hi):
                if rec.flags & SACKED:
                    continue
                size = rec.end - rec.start
                self.sacked_bytes += size
                d.sacked += size
                self._forget_flight(rec, size)
                if not rec.flags & EVER_RETRANS:
                    if d.newest_sacked_at is None or rec.sent_at > d.newest_sacked_at:
                        d.newest_sacked_at = rec.sent_at
                    if d.oldest_original_at is None or rec.sent_at < d.oldest_original_at:
                        d.oldest_original_at = rec.sent_at
                rec.flags = (rec.flags & ~(LOST | RETRANS)) | SACKED
                self._delivered(rec, now, prior_fack, d)
            self._merge_sacked(max(lo, ack_abs), hi)
        if ack_abs > self._una_abs:
            recs = self.records
            n = 0
            for rec in recs:
                if rec.end > ack_abs:
                    if rec.start < ack_abs:  # partly acknowledged: keep the rest
                        recs[n] = rec.split(ack_abs)  # the unacknowledged rest stays
                        self._acked(rec, now, prior_fack, d)
                    break
                self._acked(rec, now, prior_fack, d)
                n += 1
            del recs[:n]
            self._una = ack
            self._una_abs = ack_abs
        # RFC 8985 §6.2 step 4: a D-SACK widens the reordering window, once per round.
        if d.dsack and (self.dsack_round is None or self._una_abs >= self.dsack_round):
            self.dsack_round = max_abs
            self.reo_wnd_mult = min(self.reo_wnd_mult + 1, 8)
            self.reo_wnd_persist = REO_WND_PERSIST
        if d.rate_prior_delivered >= 0:
            self._rate_sample(d, now)
        return d

    def _merge_sacked(self, lo: int, hi: int) -> None:
        """Join the SACKed records in and beside ``[lo, hi)`` that nothing tells apart.

        Once SACKed, a record's send time and delivery state have been used; only its
        range still counts.  Behind a hole every ACK extends a SACK block by a
        segment, and each extension was a record of its own: the scoreboard grew by
        one per ACK and every ACK walked all of them, a window's square per loss
        (Linux collapses SACKed skbs for the same reason, ``tcp_shift_skb_data``)."""
        recs = self.records
        i = max(bisect_right(recs, lo, key=_start) - 2, 0)
        while i + 1 < len(recs):
            a = recs[i]
            if a.start > hi:
                break
            b = recs[i + 1]
            if a.flags & SACKED and b.flags == a.flags and a.end == b.start:
                a.end = b.end
                del recs[i + 1]
            else:
                i += 1

    def _rate_sample(self, d: Delivery, now: float) -> None:
        """Linux ``tcp_rate_gen``: the delivery rate over the sample that began when
        the most recently sent of the ranges just delivered left.  The interval is
        the longer of its send and ACK phases, so neither a burst that left at once
        nor ACKs that arrived at once can overstate the rate; one shorter than the
        minimum RTT is impossible (compressed ACKs) and gives no sample."""
        self.delivered_at = now
        if self.app_limited and self.delivered > self.app_limited:
            self.app_limited = 0  # the bubble has left the network
        interval = max(d.rate_send_elapsed, now - d.rate_prior_at)
        if interval < self.min_rtt or interval <= 0:
            return
        d.rate_delivered = delivered = self.delivered - d.rate_prior_delivered
        d.rate_interval = interval
        if (
            not d.rate_app_limited
            or delivered * self.rate_interval >= self.rate_delivered * interval
        ):
            self.rate_delivered = delivered
            self.rate_interval = interval
            self.rate_app_limited = d.rate_app_limited

    def delivery_rate(self) -> float | None:
        """Bytes per second of the last sample worth reporting (None: none yet)."""
        if self.rate_interval <= 0:
            return None
        return self.rate_delivered / self.rate_interval

    def _is_dsack(
        self, lo: int, hi: int, ack_abs: int, blocks: tuple[tuple[int, int], ...]
    ) -> bool:
        """RFC 2883 §4: the first block reports a duplicate if it lies below the
        cumulative ACK or inside the second block (a repeated SACK block is not one)."""
        if lo < ack_abs:
            return True
        if len(blocks) > 1:
            return self._abs(blocks[1][0]) <= lo and hi <= self._abs(blocks[1][1])
        return False

    def _acked(self, rec: Sent, now: float, prior_fack: int, d: Delivery) -> None:
        size = rec.end - rec.start
        d.acked += size
        if rec.flags & SACKED:
            self.sacked_bytes -= size
            return  # already counted as delivered when it was SACKed
        if rec.flags & EVER_RETRANS:
            d.rexmit_acked = True
        else:
            if d.first_acked_at is None:
                d.first_acked_at = rec.sent_at
            if d.oldest_original_at is None or rec.sent_at < d.oldest_original_at:
                d.oldest_original_at = rec.sent_at
        self._forget_flight(rec, size)
        self._delivered(rec, now, prior_fack, d)

    def _forget_flight(self, rec: Sent, size: int) -> None:
        if rec.flags & LOST:
            self.lost_bytes -= size
        if rec.flags & RETRANS:
            self.retrans_bytes -= size

    def _delivered(self, rec: Sent, now: float, prior_fack: int, d: Delivery) -> None:
        """RFC 8985 §6.2 steps 1-3 for one newly delivered record, and the delivery
        rate sample's start (Linux ``tcp_rate_skb_delivered``)."""
        size = rec.end - rec.start
        self.delivered += size
        d.delivered += size
        if rec.order > d.rate_order or (rec.order == d.rate_order and rec.end > d.rate_end):
            d.rate_order = rec.order
            d.rate_end = rec.end
            d.rate_prior_delivered = rec.delivered
            d.rate_prior_at = rec.delivered_at
            d.rate_send_elapsed = rec.sent_at - rec.first_sent_at
            d.rate_app_limited = rec.app_limited
            d.rate_rtt = -1.0 if rec.flags & EVER_RETRANS else now - rec.sent_at
            self.first_sent_at = rec.sent_at
        if rec.end < prior_fack and not rec.flags & EVER_RETRANS:
            self.reordering_seen = True  # delivered below data delivered earlier
        if rec.end > self.fack:
            self.fack = rec.end
        rtt = now - rec.sent_at
        if rec.flags & EVER_RETRANS and rtt < self.min_rtt:
            return  # the ACK may be for the original transmission: not a RACK sample
        self.rack_rtt = rtt
        if rtt < self.min_rtt:
            self.min_rtt = rtt
        if rec.order > self.rack_order or (
            rec.order == self.rack_order and rec.end > self.rack_end
        ):
            self.rack_order = rec.order
            self.rack_end = rec.end

    # ------------------------------------------------------------------ loss

    def reo_wnd(self, srtt: float, in_recovery: bool) -> float:
        """RFC 8985 §6.2 step 4: how long to wait for reordering before calling loss.

        Zero while the path has not been seen to reorder and the evidence is already
        strong (in recovery, or DupThresh segments SACKed, DupThresh being the
        reordering degree as in Linux's ``tcp_rack_reo_wnd``); otherwise a quarter of
        the minimum RTT, widened by D-SACKs, never more than SRTT."""
        if not self.reordering_seen and (in_recovery or self.sacked_bytes >= self.dupthresh_bytes):
            return 0.0
        base = self.min_rtt if self.min_rtt != float("inf") else srtt
        return min(base / 4 * self.reo_wnd_mult, srtt)

    def on_recovery_done(self) -> None:
        if self.reo_wnd_persist:
            self.reo_wnd_persist -= 1
            if not self.reo_wnd_persist:
                self.reo_wnd_mult = 1

    def _check_reordering(
        self, ack_abs: int, blocks: tuple[tuple[int, int], ...], max_abs: int
    ) -> None:
        """Linux ``tcp_check_sack_reordering``, before the ACK is applied: does it deliver
        never-retransmitted data below the highest data delivered before it?  Then the
        path reordered, by as many segments as lie between the lowest such position
        and the highest delivered after this ACK; the degree rises to that."""
        fack = self.fack
        if fack <= self._una_abs:
            return  # nothing was delivered out of order: nothing can arrive below it
        low: int | None = None
        new_fack = fack
        if ack_abs > self._una_abs:
            low = self._hole_at(self._una_abs, min(ack_abs, fack))
            new_fack = max(new_fack, ack_abs)
        for i, (left, right) in enumerate(blocks):
            lo, hi = self._abs(left), self._abs(right)
            if i == 0 and self._is_dsack(lo, hi, ack_abs, blocks):
                continue
            if not (lo < hi <= max_abs and hi > ack_abs):
                continue
            new_fack = max(new_fack, hi)
            pos = self._hole_at(max(lo, ack_abs), min(hi, fack))
            if pos is not None and (low is None or pos < low):
                low = pos
        if low is not None:
            self.reorder_events += 1
            self.note_reordering(new_fack - low)

    def _hole_at(self, lo: int, hi: int) -> int | None:
        """The lowest position in ``[lo, hi)`` not yet delivered and never retransmitted."""
        recs = self.records
        i = max(bisect_right(recs, lo, key=_start) - 1, 0)
        while i < len(recs):
            rec = recs[i]
            if rec.start >= hi:
                break
            if rec.end > lo and not rec.flags & (SACKED | EVER_RETRANS):
                return max(rec.start, lo)
            i += 1
        return None

    def note_reordering(self, distance: int) -> None:
        """Data arrived ``distance`` bytes below the highest delivered: the degree rises
        to that many segments (rounded up; at most ``MAX_REORDERING``), never falls."""
        self.reordering_seen = True
        mss = self.mss
        if distance > self.reordering * mss:
            self.reordering = min(-(-distance // mss), MAX_REORDERING)
            self.dupthresh_bytes = self.reordering * mss

    def note_reordering_segments(self, segments: int) -> None:
        """Without SACK (Linux ``tcp_check_reno_reordering``): more duplicate ACKs than
        segments could cause.  The degree rises to ``segments``, never falls."""
        self.reordering_seen = True
        if segments > self.reordering:
            self.reordering = min(segments, MAX_REORDERING)
            self.dupthresh_bytes = self.reordering * self.mss

    def limit_reordering(self) -> None:
        """Linux ``tcp_enter_loss``: a timeout struck while DupThresh segments were
        SACKed (or duplicate ACKs in) and no recovery had begun.  The degree was too
        high — it held off the fast retransmit — and falls back to DupThresh."""
        if self.reordering > DUPTHRESH:
            self.reordering = DUPTHRESH
            self.dupthresh_bytes = DUPTHRESH * self.mss

    def detect_lost(self, now: float, reo_wnd: float) -> tuple[int, float | None]:
        """RFC 8985 §6.2 step 5: mark what was sent before the RACK segment and has had
        RTT + reo_wnd to arrive.  Returns (bytes newly lost, seconds until the next
        record would qualify — the reordering timer — or None)."""
        if self.rack_order < 0:
            return 0, None
        newly = 0
        wait: float | None = None
        rack_order, rack_end, deadline = self.rack_order, self.rack_end, self.rack_rtt + reo_wnd
        for rec in self.records:
            flags = rec.flags
            if flags & SACKED or flags & (LOST | RETRANS) == LOST:
                continue  # delivered, or already waiting for its retransmission
            if rec.order > rack_order or (rec.order == rack_order and rec.end >= rack_end):
                continue  # sent after the newest delivered segment: no evidence yet
            remaining = rec.sent_at + deadline - now
            if remaining <= 0:
                newly += self._mark_lost(rec)
            elif wait is None or remaining > wait:
                wait = remaining
        return newly, wait

    def _mark_lost(self, rec: Sent) -> int:
        """Mark for retransmission; a lost retransmission leaves the pipe as well."""
        size = rec.end - rec.start
        if rec.flags & RETRANS:
            self.retrans_bytes -= size
        if not rec.flags & LOST:
            self.lost_bytes += size
        self.lost_total += size
        rec.flags = (rec.flags & ~RETRANS) | LOST
        return size

    def mark_head_lost(self, length: int) -> int:
        """Without SACK (RFC 6582): the segment at SND.UNA is presumed lost."""
        recs = self.records
        if not recs:
            return 0
        start = recs[0].start
        newly = 0
        for rec in self._cut(start, start + length):
            if not rec.flags & SACKED and rec.flags & (LOST | RETRANS) != LOST:
                newly += self._mark_lost(rec)
        return newly

    def mark_all_lost(self) -> None:
        """RTO (RFC 8985 §6.3, Linux ``tcp_timeout_mark_lost``): everything not SACKed
        is lost.  If the head was SACKed the peer reneged (RFC 2018 §8): forget SACKs."""
        recs = self.records
        if recs and recs[0].flags & SACKED:
            for rec in recs:
                rec.flags &= ~SACKED
            self.sacked_bytes = 0
        for rec in recs:
            if not rec.flags & SACKED:
                self._mark_lost(rec)

    def unmark_lost(self) -> None:
        """The losses were not real (a spurious timeout, found by Eifel): what waits
        for retransmission is in flight after all (Linux ``tcp_undo_cwnd_reduction``
        with ``unmark_loss``).  Retransmitted ranges keep their mark, which makes
        ``pipe`` count them once."""
        for rec in self.records:
            if rec.flags & LOST and not rec.flags & RETRANS:
                rec.flags &= ~LOST
                self.lost_bytes -= rec.end - rec.start

    def next_lost(self, max_len: int) -> tuple[int, int] | None:
        """The first lost range awaiting retransmission, as (seq, length ≤ max_len)."""
        if not self.lost_bytes:
            return None
        for rec in self.records:
            if rec.flags & (LOST | RETRANS) == LOST:
                return self.seq(rec.start), min(rec.end - rec.start, max_len)
        return None

    def first_unsacked(self, max_len: int) -> tuple[int, int] | None:
        """The lowest range the peer does not hold, as (seq, length ≤ max_len)."""
        for rec in self.records:
            if not rec.flags & SACKED:
                return self.seq(rec.start), min(rec.end - rec.start, max_len)
        return None

    def sack_ranges(self) -> list[tuple[int, int]]:
        """SACKed ranges as wrapping sequence numbers, merged (for tests and ``info``)."""
        out: list[tuple[int, int]] = []
        last_end = -1
        for rec in self.records:
            if not rec.flags & SACKED:
                continue
            if out and rec.start == last_end:
                out[-1] = (out[-1][0], self.seq(rec.end))
            else:
                out.append((self.seq(rec.start), self.seq(rec.end)))
            last_end = rec.end
        return out

    def reset(self, una: int) -> None:
        """Forget every record (connection re-synchronised or closed)."""
        self.records.clear()
        self._una, self._una_abs = una, 0
        self.sacked_bytes = self.lost_bytes = self.retrans_bytes = 0
        self.fack = 0
        self.dsack_round = None


def _start(rec: Sent) -> int:
    return rec.start
