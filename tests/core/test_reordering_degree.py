"""The path's reordering degree (Linux ``tp->reordering``): how many segments deep
the path has been seen to reorder, 3 (RFC 5681's DupThresh) until then, at most 300.

- With SACK (Linux ``tcp_check_sack_reordering``, RFC 8985 §6.2 step 3): an ACK
  that delivers never-retransmitted data below the highest data delivered before
  it raises the degree to the distance, in segments, from that data to the highest
  delivered (``counters.sack_reorder``);
- with timestamps (Linux ``tcp_try_undo_partial``): Eifel shows the original of a
  fast retransmit filled the hole, so it came that far behind
  (``counters.ts_reorder``);
- without SACK (Linux ``tcp_check_reno_reordering``): more duplicate ACKs than the
  segments in flight could cause (``counters.reno_reorder``).

The degree is RACK's DupThresh (RFC 8985 §6.2 step 4, as Linux's
``tcp_rack_reo_wnd``) and NewReno's duplicate-ACK threshold, and a timeout before
any recovery began, with DupThresh segments SACKed or duplicate ACKs in, sets it
back to 3 (Linux ``tcp_enter_loss``).
"""

from __future__ import annotations

from typing import Any

from aiotcp.core.connection import Connection
from aiotcp.core.scoreboard import MAX_REORDERING, Scoreboard
from aiotcp.core.timers import TimerName
from aiotcp.sstable import connection_row, format_rows
from aiotcp.testing.corekit import Harness, L, opts, syn_sent

MSS = 1000
RTT = 0.04
REO_WND = RTT / 4  # RACK's reordering window once reordering was seen: min RTT / 4


class Peer:
    """The receiver's timestamps: a TSval that grows with each ACK, and the echo."""

    def __init__(self, t: Harness, enabled: bool) -> None:
        self.t = t
        self.enabled = enabled
        self.ts_val = 5000

    def ts(self, echo: int | None = None) -> dict[str, int]:
        if not self.enabled:
            return {}
        self.ts_val += 1
        return {"ts_val": self.ts_val, "ts_ecr": echo if echo is not None else 0}


def sender(*, sack: bool, timestamps: bool = False) -> tuple[Harness, Peer]:
    """An established sender after a 40 ms handshake (SRTT = min RTT = 40 ms)."""
    t = syn_sent(opts(nodelay=True, sack=sack, timestamps=timestamps))
    syn_ts = t.conn._ts_now(t.now)
    t.advance(RTT)
    peer = Peer(t, timestamps)
    # The timestamp option takes 12 bytes of each segment: MSS-sized payloads either way.
    mss = MSS + (12 if timestamps else 0)
    t.recv("SA", ack=L(1), mss=mss, sack_permitted=sack, **peer.ts(syn_ts))
    t.expect("A")
    return t, peer


def flight(t: Harness, first: int, count: int = 10) -> int:
    """Send segments ``first`` .. ``first + count - 1`` (numbered from the first data
    byte); their ACKs arrive one RTT later.  Returns the TSval they carried."""
    ts = t.conn._ts_now(t.now)
    t.send(bytes(count * MSS))
    sent = [s.seq for s in t.output() if s.payload]
    assert sent == [P(first + i) for i in range(count)], sent
    t.advance(RTT)
    return ts


def P(n: int) -> int:
    """The sequence number segment ``n`` starts at."""
    return L(1 + n * MSS)


def sacked(*segments: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """SACK blocks for segments [first, last)."""
    return tuple((P(a), P(b)) for a, b in segments)


def resent(t: Harness) -> list[int]:
    return [s.seq for s in t.output() if s.payload]


def reordering(conn: Connection) -> int:
    return int(conn.info_dict(0.0)["reordering"])


# ---------------------------------------------------------------------- with SACK


def reorder_by_five(t: Harness) -> None:
    """Segments 0-9.  Segment 0 arrives after segment 1, within RACK's reordering
    window (RFC 8985 §6.2 step 3: the path reorders); then segment 3 arrives after
    4-8, five segments late."""
    flight(t, 0)
    t.recv("A", ack=P(0), sack_blocks=sacked((1, 2)))
    assert t.conn.timers.get(TimerName.REORDER) is not None  # RACK waits min RTT / 4
    t.recv("A", ack=P(2))  # segment 0, late by one segment
    assert t.conn.recovery.board.reordering_seen
    assert reordering(t.conn) == 3 and t.conn.counters.sack_reorder == 1
    t.recv("A", ack=P(3))
    for last in range(5, 10):  # 4, 5, 6, 7, 8 arrive; 3 is held back
        t.recv("A", ack=P(3), sack_blocks=sacked((4, last)))
    t.advance(REO_WND / 2)
    t.recv("A", ack=P(9))  # segment 3 fills the hole: five segments late
    t.recv("A", ack=P(10))


def test_sack_reordering_by_five_segments_raises_the_degree_to_six() -> None:
    """RFC 8985 §6.2 step 3, with Linux's measure of it.  Segment 0 arrives after
    segment 1: the path reorders, but by two segments, within the degree of 3.
    Then segment 3 comes after 4-8: delivered five segments below the highest
    SACKed, the degree becomes six segments ((fack - seq) / MSS, rounded up).  No
    segment was ever resent."""
    t, _ = sender(sack=True)
    reorder_by_five(t)
    assert reordering(t.conn) == 6
    assert t.conn.counters.sack_reorder == 2
    assert resent(t) == [] and t.conn.counters.retransmits == 0


def test_the_reordering_is_measured_up_to_the_highest_delivered() -> None:
    """Two SACK blocks, and the late segment fills the lower hole: the distance
    counts to the highest SACKed data, not the block next to it (Linux's fack)."""
    t, _ = sender(sack=True)
    flight(t, 0)
    t.recv("A", ack=P(0), sack_blocks=sacked((1, 2)))
    t.recv("A", ack=P(2))
    t.recv("A", ack=P(2), sack_blocks=sacked((3, 4)))
    t.recv("A", ack=P(2), sack_blocks=sacked((8, 9), (3, 4)))
    t.recv("A", ack=P(2), sack_blocks=sacked((3, 5), (8, 9)))  # 4 arrives after 8
    assert reordering(t.conn) == 5  # segment 4 arrived with 5-8's top delivered: 9 - 4
    assert t.conn.counters.sack_reorder == 2
    assert resent(t) == []
    t.recv("A", ack=P(0), sack_blocks=sacked((1, 2)))
    assert t.conn.timers.get(TimerName.REORDER) is not None  # RACK waits min RTT / 4


def test_at_degree_six_reordering_resends_nothing_and_a_loss_is_still_found() -> None:
    """After the degree rose to six: a second reordering of the same depth resends
    nothing (RACK waits its window, the late segment arrives), while a real loss is
    still found by RACK's timer — not at once, and without waiting for the RTO —
    and a timeout that strikes with DupThresh segments SACKed before any recovery
    began sets the degree back to 3 (Linux ``tcp_enter_loss``)."""
    t, _ = sender(sack=True)
    reorder_by_five(t)
    assert reordering(t.conn) == 6 and t.conn.counters.retransmits == 0

    # The same reordering again: nothing is resent.
    flight(t, 10)
    for last in range(12, 17):
        t.recv("A", ack=P(10), sack_blocks=sacked((11, last)))
    t.advance(REO_WND / 2)
    assert resent(t) == []
    t.recv("A", ack=P(16))
    assert reordering(t.conn) == 6 and t.conn.counters.sack_reorder == 3

    # A real loss: segment 16 never arrives; 17-19 do.  RACK's timer finds it.
    for last in range(18, 21):
        t.recv("A", ack=P(16), sack_blocks=sacked((17, last)))
    assert resent(t) == []
    t.advance(REO_WND)
    assert resent(t) == [P(16)]
    assert t.conn.counters.fast_retransmits == 1
    assert t.conn.counters.rto_expirations == 0
    t.recv("A", ack=P(20))
    assert not t.conn.recovery.in_recovery
    assert reordering(t.conn) == 6  # a loss found in time says nothing against it

    # A delay spike: the SACKs for 21-24 come just before the RTO, which fires
    # before RACK's window runs out: the degree is reset.
    flight(t, 20)
    while True:  # the tail loss probe goes meanwhile
        rto_at = t.conn.timers.get(TimerName.RETRANSMIT)
        assert rto_at is not None
        if rto_at - t.now <= REO_WND / 4:
            break
        t.advance(0.001)
    t.recv("A", ack=P(20), sack_blocks=sacked((21, 25)))
    t.advance(REO_WND / 2)
    assert t.conn.counters.rto_expirations == 1
    assert reordering(t.conn) == 3


def test_an_rto_in_recovery_keeps_the_degree() -> None:
    """Linux resets the degree only for a timeout in the open or disorder state: one
    during a recovery is the retransmissions' loss, not a sign of reordering."""
    t, _ = sender(sack=True)
    reorder_by_five(t)
    flight(t, 10)
    t.recv("A", ack=P(10), sack_blocks=sacked((11, 20)))  # 10 lost
    t.advance(REO_WND)
    assert resent(t) == [P(10)] and t.conn.recovery.in_recovery
    for _ in range(400):  # the retransmission is lost too; no ACK comes
        t.advance(0.005)
        if t.conn.counters.rto_expirations:
            break
    assert t.conn.counters.rto_expirations == 1
    assert reordering(t.conn) == 6


def test_timestamps_show_a_spurious_fast_retransmit_and_the_degree_rises() -> None:
    """No reordering seen yet: three SACKed segments make RACK's window zero and
    segment 0 goes again at once (RFC 8985 §6.2 step 4).  The ACK that then fills
    the hole echoes the original's timestamp: the original was five segments late
    (Eifel; Linux ``tcp_try_undo_partial`` counts TCPTSReorder).  The degree rises
    to six, and the path counts as reordering from now on."""
    t, peer = sender(sack=True, timestamps=True)
    original = flight(t, 0)
    for last in range(2, 7):
        t.recv("A", ack=P(0), sack_blocks=sacked((1, last)), **peer.ts(original))
    assert resent(t) == [P(0)]
    t.advance(0.002)
    t.recv("A", ack=P(6), **peer.ts(original))
    assert t.conn.counters.undo_eifel == 1 and t.conn.counters.ts_reorder == 1
    assert reordering(t.conn) == 6
    assert t.conn.recovery.board.reordering_seen


# ---------------------------------------------------------------------- without SACK


def test_without_sack_three_duplicate_acks_are_not_enough_once_the_degree_is_six() -> None:
    """NewReno (RFC 6582) with the degree as DupThresh, Linux's
    ``tcp_newreno_mark_lost``.  Segment 0 is five segments late: the third duplicate
    ACK resends it (the degree is still 3), and the ACK that fills the hole echoes
    the original's timestamp (Eifel): the degree becomes six.  The same reordering
    again: three, and five, duplicate ACKs resend nothing."""
    t, peer = sender(sack=False, timestamps=True)
    original = flight(t, 0)
    for _ in range(5):  # segments 1-5 arrive
        t.recv("A", ack=P(0), **peer.ts(original))
    assert resent(t) == [P(0)]  # at the third duplicate ACK
    t.advance(0.002)
    t.recv("A", ack=P(6), **peer.ts(original))
    assert t.conn.counters.undo_eifel == 1 and t.conn.counters.ts_reorder == 1
    assert reordering(t.conn) == 6
    t.recv("A", ack=P(10), **peer.ts(original))
    t.output()

    again = flight(t, 10)
    for _ in range(5):
        t.recv("A", ack=P(10), **peer.ts(again))
    assert resent(t) == [] and t.conn.counters.fast_retransmits == 1
    t.recv("A", ack=P(16), **peer.ts(again))
    t.recv("A", ack=P(20), **peer.ts(again))
    assert resent(t) == [] and t.conn.counters.retransmits == 1


def test_without_sack_a_loss_needs_degree_duplicate_acks_and_an_rto_resets_it() -> None:
    """Degree six: a lost segment is resent at the sixth duplicate ACK.  When only
    five later segments are in flight the timeout resends it, and since five
    duplicate ACKs had come without a recovery, the degree falls back to 3."""
    t, peer = sender(sack=False, timestamps=True)
    original = flight(t, 0)
    for _ in range(5):
        t.recv("A", ack=P(0), **peer.ts(original))
    t.advance(0.002)
    t.recv("A", ack=P(6), **peer.ts(original))
    t.recv("A", ack=P(10), **peer.ts(original))
    t.output()
    assert reordering(t.conn) == 6

    sent = flight(t, 10)
    for n in range(6):  # 10 is lost; 11-16 arrive
        t.recv("A", ack=P(10), **peer.ts(sent))
        assert resent(t) == ([P(10)] if n == 5 else [])
    stamp = t.conn.recovery.retrans_stamp
    assert stamp is not None
    t.advance(RTT)
    t.recv("A", ack=P(20), **peer.ts(stamp))  # the retransmission filled the hole
    assert t.conn.counters.undo_eifel == 1 and reordering(t.conn) == 6
    t.output()

    sent = flight(t, 20, count=6)
    for _ in range(5):  # 20 is lost; 21-25 arrive: five duplicate ACKs only
        t.recv("A", ack=P(20), **peer.ts(sent))
    assert resent(t) == []
    for _ in range(400):
        t.advance(0.005)
        if t.conn.counters.rto_expirations:
            break
    assert t.conn.counters.rto_expirations == 1
    assert P(20) in resent(t)
    assert reordering(t.conn) == 3


def test_early_retransmit_still_lowers_the_threshold() -> None:
    """RFC 5827: with three segments out and nothing more to send, two duplicate
    ACKs resend the first, whatever the degree."""
    t, _ = sender(sack=False)
    t.conn.recovery.board.reordering = 6
    flight(t, 0, count=3)
    t.recv("A", ack=P(0))
    assert resent(t) == []
    t.recv("A", ack=P(0))
    assert resent(t) == [P(0)]


def test_without_sack_more_duplicate_acks_than_segments_out_is_reordering() -> None:
    """Linux ``tcp_check_reno_reordering``: four segments out, yet a fifth duplicate
    ACK — no loss explains that (the network duplicated or reordered): the degree
    rises to the segments in flight (counted as TCPRenoReorder)."""
    t, _ = sender(sack=False)
    t.send(bytes(6 * MSS))
    t.output()
    t.advance(RTT)
    t.recv("A", ack=P(2))  # four segments left in flight
    for _ in range(4):
        t.recv("A", ack=P(2))
    assert t.conn.counters.reno_reorder == 1
    assert reordering(t.conn) == 4
    t.recv("A", ack=P(2))
    assert t.conn.counters.reno_reorder == 2


# ---------------------------------------------------------------------- the number itself


def test_the_degree_is_capped_at_300_segments() -> None:
    board = Scoreboard(0)
    board.set_mss(MSS)
    board.note_reordering(1000 * MSS)
    assert board.reordering == MAX_REORDERING == 300
    assert board.dupthresh_bytes == 300 * MSS


def test_ss_shows_the_degree_only_when_it_is_not_the_default() -> None:
    t, _ = sender(sack=True)
    row: dict[str, Any] = connection_row(t.conn, t.now)
    assert row["reordering"] == 3 and "reordering" not in format_rows([row])
    assert t.conn.info(t.now).reordering == 3
    reorder_by_five(t)
    row = connection_row(t.conn, t.now)
    assert "reordering:6" in format_rows([row])
    assert t.conn.info(t.now).reordering == 6
