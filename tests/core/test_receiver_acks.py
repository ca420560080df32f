"""When the receiver acknowledges: Linux's policy (tcp_input.c), which RFC 5681 §4.2
and RFC 9293 §3.8.6.3 leave room for.

- Quick-ACK mode: the first segments of a connection, those after a silence longer
  than the RTO, and anything after duplicate data or a CE mark are acknowledged at
  once, so a sender in slow start or recovery never waits out the delayed-ACK timer.
- An interactive connection (it answers within 40 ms what it receives) lets its
  ACKs ride on the answers instead.
- Within a receive batch, an ACK for every second full-sized segment, not one
  stretch ACK for the whole batch; still sent after the batch (RFC 9293 MUST-59).
"""

from __future__ import annotations

from aiotcp.core.connection import MAX_QUICK_ACKS
from aiotcp.core.segment import CE
from aiotcp.core.timers import TimerName
from aiotcp.testing.corekit import Harness, R, ecn_client, established, opts, quick_acks_spent

DELACK = opts(delayed_ack=True)


def test_the_first_segments_are_acknowledged_at_once() -> None:
    """A fresh connection's data: an ACK per segment, sixteen times (rcv_wnd / 2 MSS
    caps it lower for a small window), then the delayed ACK again."""
    t = established(DELACK, mss=1000)
    for i in range(MAX_QUICK_ACKS):
        t.recv("PA", payload=b"q" * 100)
        t.expect("A", ack=R(1 + 100 * (i + 1)))
    t.recv("PA", payload=b"q" * 100)
    t.expect_nothing()
    assert TimerName.DELAYED_ACK in t.conn.timers


def test_a_small_window_gets_fewer_quick_acks() -> None:
    """Linux's tcp_incr_quickack: rcv_wnd / (2 * rcv_mss) of them: 4000 // (2 * 536,
    the first estimate of the peer's MSS, Linux's too) = 3."""
    t = established(opts(delayed_ack=True, recv_buffer=4000), mss=1000)
    got = 0
    for _ in range(6):
        t.recv("PA", payload=b"s" * 10)
        got += len(t.output())
        t.read()
    assert got == 3


def test_data_after_a_silence_longer_than_the_rto_is_acknowledged_at_once() -> None:
    t = quick_acks_spent(established(DELACK))
    t.recv("PA", payload=b"a" * 100)
    t.expect_nothing()  # delayed, as usual
    t.advance(0.041)
    t.expect("A", ack=R(101))
    t.advance(t.conn.rtt.rto + 0.1)
    t.recv("PA", payload=b"b" * 100)
    t.expect("A", ack=R(201))


def test_an_answering_connection_lets_acks_ride_on_its_answers() -> None:
    """Request, ACK at once (quick); the answer within 40 ms makes the connection
    interactive; the next request's ACK then waits and rides on the next answer."""
    t = established(DELACK)
    t.recv("PA", payload=b"GET 1")
    t.expect("A", ack=R(6))
    t.advance(0.001)
    t.send(b"answer 1")
    t.expect("PA", payload=b"answer 1")
    t.recv("PA", payload=b"GET 2")
    t.expect_nothing()
    t.advance(0.001)
    t.send(b"answer 2")
    t.expect("PA", ack=R(11), payload=b"answer 2")


def answered_once() -> Harness:
    """A request, its quick ACK and an answer: an interactive connection now."""
    t = established(DELACK)
    t.recv("PA", payload=b"GET 1")
    t.expect("A")
    t.send(b"answer 1")
    t.expect("PA")
    return t


def test_a_missed_delayed_ack_ends_interactive_mode() -> None:
    """Linux's tcp_delack_timer: the timer fired, so no answer rode the ACK."""
    t = answered_once()
    t.recv("PA", payload=b"GET 2")
    t.advance(0.041)
    t.expect("A", ack=R(11))
    assert not t.conn._pingpong


def test_duplicate_data_is_acknowledged_at_once_even_when_interactive() -> None:
    """A retransmission means the sender is waiting: quick-ACK mode, pingpong off."""
    t = answered_once()
    t.recv("PA", seq=R(1), payload=b"GET 1", advance_peer=False)  # a duplicate
    t.expect("A", ack=R(6))
    t.recv("PA", payload=b"GET 2")
    t.expect("A", ack=R(11))


def test_a_ce_mark_is_acknowledged_at_once_and_the_next_segment_too() -> None:
    """RFC 3168 §6.1.3 with Linux's tcp_ecn_check_ce: two quick ACKs."""
    t = quick_acks_spent(ecn_client(delayed_ack=True))
    t.recv("A", payload=b"x" * 100, ecn=CE)
    t.expect("AE", ack=R(101))
    t.recv("A", payload=b"y" * 100)
    t.expect("AE", ack=R(201))
    t.recv("A", payload=b"z" * 100)
    t.expect_nothing()


def test_a_batch_of_full_segments_gets_an_ack_per_two_not_one_stretch_ack() -> None:
    """Ten full segments in one batch: five ACKs, cumulative at 2, 4, 6, 8 and 10,
    all built while the batch is processed and sent after it."""
    t = quick_acks_spent(established(opts(delayed_ack=True, recv_buffer=1 << 20), mss=1000))
    for _ in range(10):
        t.recv("A", payload=b"d" * 1000)
    assert [s.ack for s in t.output()] == [R(1 + k * 1000) for k in (2, 4, 6, 8, 10)]


def test_gro_segments_get_one_ack_each_while_the_window_can_move() -> None:
    """Like Linux, one ACK per GRO segment (each far more than two full segments) as
    long as the window's right edge can move by what it acknowledges: here the
    16-bit field (no window scaling) shows less than the buffer holds."""
    t = quick_acks_spent(established(opts(delayed_ack=True, recv_buffer=1 << 22), mss=1448))
    for _ in range(8):
        t.recv("A", payload=bytes(45 * 1448))
    assert [s.ack for s in t.output()] == [R(1 + k * 45 * 1448) for k in range(1, 9)]


def test_unread_data_that_holds_the_window_still_waits_for_the_batch_end() -> None:
    """Linux's __tcp_ack_snd_check also wants the window to advance; data the
    application has not read yet holds it, and the ACK waits for the read (one per
    ~250 KB from Linux's receiver on veth).  With a reader between the segments,
    an ACK per segment again."""
    o = opts(delayed_ack=True, recv_buffer=1 << 22, window_scaling=True)
    t = quick_acks_spent(established(o, mss=1448, wscale=7))
    t.output()
    for _ in range(4):
        t.recv("A", payload=bytes(45 * 1448))
    assert [s.ack for s in t.output()] == [R(1 + 4 * 45 * 1448)]
    for _ in range(5, 9):
        t.recv("A", payload=bytes(45 * 1448))
        t.read()
    assert [s.ack for s in t.output()] == [R(1 + k * 45 * 1448) for k in range(5, 9)]


def test_no_ack_in_the_middle_of_a_batch_while_a_hole_is_open() -> None:
    """A segment that overtook its predecessor inside one batch (veth, two CPUs) must
    not be SACKed before the batch fills the hole: one ACK, after the batch."""
    t = quick_acks_spent(established(opts(delayed_ack=True, recv_buffer=1 << 20), mss=1000))
    t.recv("A", payload=b"1" * 1000)
    t.recv("A", payload=b"2" * 1000)  # two full segments: an ACK is owed
    t.recv("A", seq=R(3001), payload=b"4" * 1000, advance_peer=False)  # owed ACK goes first
    t.recv("A", seq=R(4001), payload=b"5" * 1000, advance_peer=False)  # hole open: none
    t.recv("A", seq=R(2001), payload=b"3" * 1000, advance_peer=False)
    out = t.output()
    assert [(s.ack, s.sack_blocks) for s in out] == [(R(2001), ()), (R(5001), ())]


def test_small_segments_in_one_batch_share_one_ack() -> None:
    """RFC 9293 MUST-58: aggregate ACKs where the every-second-segment rule allows,
    quick-ACK mode included (each segment alone would have had its own)."""
    t = established(DELACK, mss=1000)
    for _ in range(3):
        t.recv("PA", payload=b"k" * 150)
    assert [s.ack for s in t.output()] == [R(451)]


def test_sack_blocks_follow_rfc_2018_section_4() -> None:
    """The first block holds the segment that triggered the ACK; the others repeat
    the most recently reported blocks, so with four holes the oldest block drops
    out of a three-block option (timestamps take the room of the fourth), and
    comes back first when new data extends it."""
    t = established(
        opts(delayed_ack=True, timestamps=True), sack_permitted=True, ts_val=1, ts_ecr=1
    )
    starts = (101, 301, 501, 701)  # four ranges above four holes, oldest first
    for start in starts:
        t.recv("A", seq=R(start), payload=b"o" * 50, advance_peer=False, ts_val=2)
        t.output()
    t.recv("A", seq=R(751), payload=b"o" * 50, advance_peer=False, ts_val=3)
    (ack,) = t.output()
    assert ack.sack_blocks == ((R(701), R(801)), (R(501), R(551)), (R(301), R(351)))
    t.recv("A", seq=R(151), payload=b"o" * 50, advance_peer=False, ts_val=4)
    (ack,) = t.output()
    assert ack.sack_blocks == ((R(101), R(201)), (R(701), R(801)), (R(501), R(551)))
