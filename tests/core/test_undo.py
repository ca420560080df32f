"""Undoing a reduction that was for nothing: the retransmission was spurious.

Reordering and sudden delays make a sender retransmit data that was not lost; the
window it halved (or, after a timeout, collapsed) for that costs throughput for
many round trips.  The sender gets it back when the evidence comes in:

- D-SACK (RFC 3708 §3): every retransmission of the episode is reported as a
  duplicate;
- Eifel (RFC 3522 §2, response RFC 4015 §3): the first ACK for the retransmitted
  data echoes the original's timestamp, so the original arrived.
"""

from __future__ import annotations

from aiotcp.testing.corekit import Harness, L, R, opts, syn_sent

MSS = 1000
RTT = 0.04


def sender(timestamps: bool) -> Harness:
    """Ten segments in flight after a 40 ms handshake; the ACKs the test delivers
    arrive one round trip after the data left."""
    t = syn_sent(opts(nodelay=True, sack=True, timestamps=timestamps))
    syn_ts = t.conn._ts_now(t.now)
    t.advance(RTT)
    ts = {"ts_val": 5000, "ts_ecr": syn_ts} if timestamps else {}
    # The timestamp option takes 12 bytes of each segment: MSS-sized payloads either way.
    mss = MSS + (12 if timestamps else 0)
    t.recv("SA", ack=L(1), mss=mss, sack_permitted=True, **ts)
    t.expect("A")
    t.send(bytes(10 * MSS))
    t.output()
    t.advance(RTT)
    return t


def blocks(*segments: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    return tuple((L(1 + a * MSS), L(1 + b * MSS)) for a, b in segments)


def fast_retransmit_of_segment_1(t: Harness, **ts: int) -> tuple[int, int]:
    """Segment 0 ACKed, 2-4 SACKed; after RACK's reordering window, segment 1 goes
    again.  Returns the windows before the reduction (cwnd, ssthresh)."""
    t.recv("A", ack=L(1 + MSS), **ts)
    before = (t.conn.cc.cwnd, t.conn.cc.ssthresh)
    t.recv("A", ack=L(1 + MSS), sack_blocks=blocks((2, 5)), **ts)
    t.advance(0.011)  # RACK's reordering window: a quarter of the minimum RTT
    resent = [s for s in t.output() if s.seq == L(1 + MSS) and s.payload]
    assert len(resent) == 1 and t.conn.recovery.in_recovery
    assert t.conn.cc.cwnd < before[0]
    return before


def test_all_retransmissions_reported_as_duplicates_undo_the_reduction() -> None:
    """RFC 3708 §3: segment 1 was only late.  The receiver then gets it twice and
    says so with a D-SACK below its cumulative ACK: the window comes back."""
    t = sender(timestamps=False)
    cwnd, ssthresh = fast_retransmit_of_segment_1(t)
    t.recv("A", ack=L(1 + 5 * MSS))  # the late original filled the hole
    assert t.conn.cc.ssthresh < ssthresh  # nothing proves it spurious yet
    t.recv("A", ack=L(1 + 5 * MSS), sack_blocks=blocks((1, 2)))  # D-SACK: the copy
    assert t.conn.counters.undo_dsack == 1
    assert t.conn.cc.cwnd >= cwnd and t.conn.cc.ssthresh == ssthresh
    assert not t.conn.recovery.in_recovery


def test_one_of_two_retransmissions_reported_undoes_nothing() -> None:
    """Segment 5 was really lost: its retransmission is not a duplicate."""
    t = sender(timestamps=False)
    fast_retransmit_of_segment_1(t)
    t.recv("A", ack=L(1 + MSS), sack_blocks=blocks((2, 5), (6, 9)))
    resent = [s for s in t.output() if s.seq == L(1 + 5 * MSS) and s.payload]
    assert resent, "RACK resends segment 5 too"
    t.recv("A", ack=L(1 + 5 * MSS), sack_blocks=blocks((6, 9)))
    t.recv("A", ack=L(1 + 5 * MSS), sack_blocks=blocks((1, 2), (6, 9)))  # D-SACK for 1 only
    assert t.conn.counters.undo_dsack == 0
    assert t.conn.cc.ssthresh < 1 << 29


def test_an_ack_echoing_the_originals_timestamp_undoes_the_fast_retransmit() -> None:
    """RFC 3522 §2: the first ACK for segment 1 echoes the TSval of its original
    transmission (older than the retransmission's): the original arrived."""
    t = sender(timestamps=True)
    original = t.conn._ts_now(RTT)  # the ten segments left at 40 ms
    cwnd, ssthresh = fast_retransmit_of_segment_1(t, ts_val=5001, ts_ecr=original)
    assert t.conn.recovery.retrans_stamp is not None and t.conn.recovery.retrans_stamp > original
    t.recv("A", ack=L(1 + 5 * MSS), ts_val=5002, ts_ecr=original)
    assert t.conn.counters.undo_eifel == 1
    assert t.conn.cc.cwnd >= cwnd and t.conn.cc.ssthresh == ssthresh
    assert not t.conn.recovery.in_recovery


def test_an_ack_echoing_the_retransmissions_timestamp_keeps_the_reduction() -> None:
    """The retransmission is what arrived: the loss was real."""
    t = sender(timestamps=True)
    original = t.conn._ts_now(RTT)
    fast_retransmit_of_segment_1(t, ts_val=5001, ts_ecr=original)
    stamp = t.conn.recovery.retrans_stamp
    assert stamp is not None
    t.recv("A", ack=L(1 + 5 * MSS), ts_val=5002, ts_ecr=stamp)
    assert t.conn.counters.undo_eifel == 0
    assert t.conn.cc.ssthresh < 1 << 29
    # Only the first ACK of the retransmission is evidence (RFC 3522 §3.2).
    t.recv("A", ack=L(1 + 6 * MSS), ts_val=5003, ts_ecr=original)
    assert t.conn.counters.undo_eifel == 0


def time_out(t: Harness) -> list[int]:
    """Wait, without ACKs, for the RTO (a tail loss probe comes first, RFC 8985 §7);
    the sequence numbers of what the timeout resent."""
    for _ in range(200):
        t.advance(0.005)
        out = t.output()
        if t.conn.counters.rto_expirations:
            return [s.seq for s in out if s.payload]
    raise AssertionError("no RTO")


def test_a_spurious_timeout_is_undone_without_resending_the_window() -> None:
    """RFC 4015 §3: a delay spike fired the RTO; segment 0 went again, then the ACK
    for the first five arrives echoing their original timestamp.  The window is
    restored and segments 5-9, marked lost by the timeout, are not sent again
    (no go-back-N): their originals are in flight."""
    t = sender(timestamps=True)
    original = t.conn._ts_now(RTT)
    cwnd = t.conn.cc.cwnd
    assert time_out(t) == [L(1)]
    assert t.conn.cc.cwnd == MSS
    t.recv("A", ack=L(1 + 5 * MSS), ts_val=5001, ts_ecr=original)
    assert t.conn.counters.undo_eifel == 1
    assert t.conn.cc.cwnd >= cwnd
    assert t.conn.recovery.board.lost_bytes == 0
    again = [s for s in t.output() if s.payload and s.seq != L(1 + 10 * MSS)]
    assert again == [], again


def test_a_real_timeout_still_resends_in_order() -> None:
    """The same timeout, but the ACK echoes the retransmission: go-back-N stands."""
    t = sender(timestamps=True)
    assert time_out(t) == [L(1)]
    stamp = t.conn.recovery.retrans_stamp
    assert stamp is not None
    t.recv("A", ack=L(1 + MSS), ts_val=5001, ts_ecr=stamp)
    assert t.conn.counters.undo_eifel == 0
    nxt = [s.seq for s in t.output() if s.payload]
    assert nxt and nxt[0] == L(1 + MSS)


def test_the_receiver_side_is_untouched() -> None:
    """Undo is the sender's: a receiver's duplicates only make D-SACK blocks (RFC 2883)."""
    t = sender(timestamps=False)
    t.recv("A", ack=L(1), payload=b"x" * 100)
    t.recv("A", seq=R(1), ack=L(1), payload=b"x" * 100, advance_peer=False)
    acks = t.output()
    assert acks[-1].sack_blocks == ((R(1), R(101)),)


def test_frto_a_timeout_whose_originals_are_acknowledged_is_undone() -> None:
    """RFC 5682 §3 step 3b without timestamps: after the RTO resent segment 0, the
    ACK also covers segments 1-4, sent before the timeout and never resent: their
    ACKs had been lost or delayed, not the data.  Undone, and no go-back-N."""
    t = sender(timestamps=False)
    cwnd = t.conn.cc.cwnd
    assert time_out(t) == [L(1)]
    t.recv("A", ack=L(1 + 5 * MSS))
    assert t.conn.counters.undo_frto == 1
    assert t.conn.cc.cwnd >= cwnd and t.conn.recovery.board.lost_bytes == 0
    assert [s for s in t.output() if s.payload] == []


def test_frto_a_timeout_acknowledged_only_by_its_retransmission_stands() -> None:
    """The ACK covers the resent segment 0 alone: nothing proves the rest arrived,
    so the timeout's recovery goes on, in order."""
    t = sender(timestamps=False)
    assert time_out(t) == [L(1)]
    t.recv("A", ack=L(1 + MSS))
    assert t.conn.counters.undo_frto == 0
    nxt = [s.seq for s in t.output() if s.payload]
    assert nxt and nxt[0] == L(1 + MSS)
    t.recv("A", ack=L(1 + 3 * MSS))  # 1 and 2 resent and acknowledged: real losses
    assert t.conn.counters.undo_frto == 0


def test_an_episode_whose_oldest_hole_went_again_before_it_began_is_not_judged() -> None:
    """RFC 3522's RetransmitTS belongs to the retransmitted oldest outstanding
    segment.  Segment 11, sent during the first recovery above its recovery point,
    is lost and resent within it; the first recovery ends with segment 11 at
    SND.UNA, its copy on the way.  A second loss (13, sent before that copy) begins
    a new episode whose first retransmission is 13.  The ACK that fills 11 echoes
    the TSval of 11's copy, older than 13's: no evidence that anything was
    spurious (taking 13's TSval put a BBR sender at 5 % loss through 8-9 false
    undos per 10 MB)."""
    t = sender(timestamps=True)
    original = t.conn._ts_now(RTT)
    fast_retransmit_of_segment_1(t, ts_val=5001, ts_ecr=original)
    stamp = t.conn.recovery.retrans_stamp
    assert stamp is not None
    t.send(bytes(5 * MSS))  # segments 10-14
    t.recv("A", ack=L(1 + MSS), sack_blocks=blocks((2, 10)), ts_val=5002, ts_ecr=original)
    sent = sorted(s.seq for s in t.output() if s.payload)
    assert L(1 + 14 * MSS) in sent, "segments 10-14 leave together"
    t.advance(RTT)
    t.recv("A", ack=L(1 + MSS), sack_blocks=blocks((2, 11), (12, 13)), ts_val=5003, ts_ecr=original)
    copy_11 = [s for s in t.output() if s.seq == L(1 + 11 * MSS) and s.payload]
    assert len(copy_11) == 1, "RACK resends segment 11 within the first recovery"
    ts_11 = copy_11[0].ts_val
    assert ts_11 is not None
    # Segment 1's copy arrives (the first episode's evidence: a real loss), and
    # SND.UNA passes the first recovery point, stopping at segment 11.
    t.recv("A", ack=L(1 + 11 * MSS), sack_blocks=blocks((12, 13)), ts_val=5004, ts_ecr=stamp)
    assert t.conn.counters.undo_eifel == 0 and not t.conn.recovery.in_recovery
    t.recv(
        "A", ack=L(1 + 11 * MSS), sack_blocks=blocks((12, 13), (14, 15)), ts_val=5005, ts_ecr=stamp
    )
    t.advance(0.011)  # RACK's reordering window for 13 (14, sent after it, arrived)
    copy_13 = [s for s in t.output() if s.seq == L(1 + 13 * MSS) and s.payload]
    assert copy_13 and t.conn.recovery.in_recovery, "segment 13 lost: a second recovery"
    assert not [s for s in copy_13 if s.seq == L(1 + 11 * MSS)]
    ssthresh = t.conn.cc.ssthresh
    # 11's copy fills its hole: the ACK echoes that copy's TSval.
    t.recv("A", ack=L(1 + 13 * MSS), sack_blocks=blocks((14, 15)), ts_val=5006, ts_ecr=ts_11)
    assert t.conn.counters.undo_eifel == 0
    assert t.conn.cc.ssthresh == ssthresh
