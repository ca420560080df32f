"""Data transfer, acceptability and ACK processing (RFC 9293 §3.4, §3.8, §3.10.7.4)."""

from __future__ import annotations

import pytest

from aiotcp.core.events import DataReceived, SendSpaceAvailable
from aiotcp.core.segment import ACK, CE, ECE, Segment
from aiotcp.core.state import State
from aiotcp.testing.corekit import (
    LOCAL,
    PEER_WINDOW,
    REMOTE,
    Harness,
    L,
    R,
    ecn_client,
    established,
    opts,
)

# -- sending -----------------------------------------------------------------------


def test_send_emits_one_segment_with_psh() -> None:
    t = established()
    assert t.send(b"hello") == 5
    t.expect("PA", seq=L(1), ack=R(1), payload=b"hello")
    t.expect_nothing()


def test_data_crosses_the_sequence_wrap() -> None:
    t = established()
    t.send(bytes(range(20)))
    t.expect("PA", seq=L(1), payload=bytes(range(20)))
    assert L(21) < L(1)  # the ack value really wrapped past 2**32
    t.recv("A", ack=L(21))
    assert t.conn.snd_una == L(21)
    assert len(t.conn.send_buffer) == 0


def test_large_send_is_split_at_mss() -> None:
    t = established(opts(nodelay=True), mss=500)
    t.send(b"a" * 1200)
    t.expect("A", seq=L(1), payload=b"a" * 500)
    t.expect("A", seq=L(501), payload=b"a" * 500)
    t.expect("PA", seq=L(1001), payload=b"a" * 200)


def test_send_respects_peer_window() -> None:
    t = established(mss=1460, window=1000)
    t.send(b"x" * 3000)
    t.expect("A", payload=b"x" * 1000)
    t.expect_nothing()
    t.recv("A", ack=L(1001), window=1000)
    t.expect("A", seq=L(1001), payload=b"x" * 1000)


def test_send_respects_congestion_window() -> None:
    t = established(opts(initial_window=2), mss=100, window=60000)
    t.send(b"y" * 1000)
    assert len(t.output()) == 2  # IW = 2 segments (RFC 5681 §3.1)


def test_zero_window_sends_no_data() -> None:
    t = established(window=0)
    t.send(b"data")
    t.expect_nothing()


def test_window_opening_releases_data() -> None:
    t = established(window=0)
    t.send(b"data")
    t.expect_nothing()
    t.recv("A", ack=L(1), window=100)
    t.expect("PA", payload=b"data")


def test_send_buffer_is_bounded_and_reports_space_again() -> None:
    t = established(opts(send_buffer=100))
    assert t.send(b"z" * 150) == 100
    assert t.conn.send_space == 0
    t.expect("PA", payload=b"z" * 100)
    t.recv("A", ack=L(101))
    assert SendSpaceAvailable in t.event_types()
    assert t.conn.send_space == 100


def test_ack_frees_send_buffer_and_advances_snd_una() -> None:
    t = established()
    t.send(b"0123456789")
    t.expect("PA")
    t.recv("A", ack=L(5))
    assert t.conn.snd_una == L(5) and len(t.conn.send_buffer) == 6


def test_window_update_accepted_only_from_newer_segments() -> None:
    """RFC 9293 §3.10.7.4: SND.WL1/SND.WL2 guard against old window updates."""
    t = established()
    t.recv("A", ack=L(1), window=5000)
    assert t.conn.snd_wnd == 5000
    # An older segment (lower seq) must not change the window.
    t.recv("A", seq=R(0), ack=L(1), window=10, advance_peer=False)
    assert t.conn.snd_wnd == 5000


# -- receiving ---------------------------------------------------------------------


def test_in_order_data_is_delivered_and_acked() -> None:
    t = established()
    t.recv("PA", payload=b"hello")
    assert t.conn.readable_bytes == 5
    assert DataReceived(5) in t.events
    t.expect("A", ack=R(6))
    assert t.read() == b"hello"


def test_read_returns_at_most_max_bytes() -> None:
    t = established()
    t.recv("PA", payload=b"abcdef")
    assert t.read(2) == b"ab"
    assert t.read() == b"cdef"
    assert t.read() == b""


def test_received_data_crosses_the_wrap() -> None:
    t = established()
    t.recv("PA", payload=bytes(30))
    t.expect("A", ack=R(31))
    assert R(31) < R(1)


def test_out_of_order_segment_gets_immediate_duplicate_ack() -> None:
    t = established()
    t.recv("PA", seq=R(11), payload=b"B" * 10, advance_peer=False)
    t.expect("A", ack=R(1))
    assert t.conn.readable_bytes == 0
    assert t.conn.counters.ooo_segments == 1


def test_hole_filled_delivers_everything_in_order() -> None:
    t = established()
    t.recv("PA", seq=R(11), payload=b"B" * 10, advance_peer=False)
    t.expect("A", ack=R(1))
    t.recv("PA", seq=R(1), payload=b"A" * 10, advance_peer=False)
    t.expect("A", ack=R(21))
    assert t.read() == b"A" * 10 + b"B" * 10


def test_three_way_reordering_reassembles() -> None:
    t = established()
    for start, chunk in ((21, b"C"), (11, b"B"), (1, b"A")):
        t.recv("A", seq=R(start), payload=chunk * 10, advance_peer=False)
    assert t.read() == b"A" * 10 + b"B" * 10 + b"C" * 10
    assert t.conn.rcv_nxt == R(31)


def test_duplicate_segment_is_acked_but_not_delivered_twice() -> None:
    t = established()
    t.recv("PA", payload=b"once")
    t.expect("A", ack=R(5))
    t.recv("PA", seq=R(1), payload=b"once", advance_peer=False)
    t.expect("A", ack=R(5))
    assert t.read() == b"once"


def test_overlapping_segment_delivers_only_new_bytes() -> None:
    t = established()
    t.recv("PA", payload=b"abcd")
    t.recv("PA", seq=R(3), payload=b"cdef", advance_peer=False)
    assert t.read() == b"abcdef"


def test_segment_beyond_window_is_unacceptable() -> None:
    t = established(opts(recv_buffer=1000))
    t.expect_nothing()
    t.recv("PA", seq=R(5000), payload=b"far", advance_peer=False)
    t.expect("A", ack=R(1))
    assert t.conn.counters.unacceptable_segments == 1
    assert t.conn.readable_bytes == 0


def test_segment_straddling_right_edge_is_trimmed() -> None:
    t = established(opts(recv_buffer=1000))
    t.recv("PA", payload=b"q" * 1200)
    assert t.conn.readable_bytes == 1000
    t.expect("A", ack=R(1001), window=0)


def test_segment_before_rcv_nxt_is_unacceptable_and_acked() -> None:
    t = established()
    t.recv("PA", payload=b"12345")
    t.expect("A")
    t.recv("PA", seq=R(-10), payload=b"old", advance_peer=False)
    t.expect("A", ack=R(6))


def test_zero_window_still_processes_acks() -> None:
    """RFC 9293 §3.10.7.4: with RCV.WND = 0, valid ACKs are still accepted."""
    t = established(opts(recv_buffer=10))
    t.recv("PA", payload=b"0123456789")
    t.expect("A", window=0)
    t.send(b"out")
    t.expect("PA", payload=b"out")
    t.recv("PA", ack=L(4), payload=b"more")  # data dropped, ACK processed
    assert t.conn.snd_una == L(4)
    t.expect("A", ack=R(11), window=0)
    assert t.conn.readable_bytes == 10


def test_reading_reopens_a_zero_window_with_an_update() -> None:
    t = established(opts(recv_buffer=2000), mss=1000)
    t.recv("PA", payload=b"x" * 2000)
    t.expect("A", ack=R(2001), window=0)
    t.read()
    t.expect("A", ack=R(2001), window=2000)


def test_small_read_does_not_send_window_update() -> None:
    """RFC 9293 §3.8.6.2.2 receiver SWS avoidance."""
    t = established(opts(recv_buffer=4000), mss=1000)
    t.recv("PA", payload=b"x" * 4000)
    t.expect("A", window=0)
    t.read(10)
    t.expect_nothing()


# -- ACK field checks --------------------------------------------------------------


def test_ack_of_unsent_data_gets_challenge_ack_and_is_dropped() -> None:
    """RFC 5961 §5.2 / RFC 9293: SEG.ACK > SND.NXT."""
    t = established()
    t.recv("PA", ack=L(100), payload=b"data")
    t.expect("A", seq=L(1), ack=R(1))
    assert t.conn.readable_bytes == 0
    assert t.conn.counters.challenge_acks == 1


def test_old_duplicate_ack_is_ignored_but_data_accepted() -> None:
    t = established()
    t.send(b"abc")
    t.expect("PA")
    t.recv("A", ack=L(4))
    t.recv("PA", ack=L(2), payload=b"ok")
    assert t.read() == b"ok"
    assert t.conn.snd_una == L(4)


def test_ack_far_below_snd_una_gets_challenge_ack() -> None:
    """RFC 5961 §5.2: SEG.ACK < SND.UNA - MAX.SND.WND."""
    t = established(window=1000)
    t.recv("A", ack=L(-5000), payload=b"x")
    t.expect("A", ack=R(1))
    assert t.conn.counters.challenge_acks == 1


def test_snd_wnd_uses_peer_window_scale() -> None:
    t = established(opts(window_scaling=True), wscale=4)
    t.recv("A", ack=L(1), window=1000)
    assert t.conn.snd_wnd == 16000


def test_our_window_is_scaled_in_the_header() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 20), wscale=0)
    t.recv("PA", payload=b"a")
    seg = t.expect("A")
    assert seg.window == ((1 << 20) - 1 + 31) >> 5 or seg.window == (1 << 20) >> 5


def test_advertised_window_never_shrinks_with_scaling() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 20), wscale=0)
    right_edges = []
    for _ in range(5):
        t.recv("PA", payload=b"z" * 1000)
        seg = t.expect("A")
        right_edges.append(seg.ack + (seg.window << t.conn.rcv_wscale))
    assert right_edges == sorted(right_edges)


def test_peer_window_default_matches_constant() -> None:
    t = established()
    assert t.conn.snd_wnd == PEER_WINDOW


def test_data_in_close_wait_state_is_ignored() -> None:
    t = established()
    t.recv("FA")
    t.expect("A")
    t.recv("PA", payload=b"late")
    assert t.state is State.CLOSE_WAIT
    assert t.conn.readable_bytes == 0


# -- urgent data (RFC 9293 §3.8.5, RFC 6093) --------------------------------------


def test_urgent_pointer_reported_and_data_kept_in_line() -> None:
    from aiotcp.core.events import UrgentDataReceived

    t = established()
    t.recv("PAU", payload=b"abc!", urgent=4)
    assert UrgentDataReceived(4) in t.events
    assert t.read() == b"abc!"


def test_urgent_pointer_reported_only_when_it_advances() -> None:
    from aiotcp.core.events import UrgentDataReceived

    t = established()
    t.recv("PAU", payload=b"ab", urgent=10)
    t.recv("PAU", payload=b"cd", urgent=8)  # same pointer (R(11)) again
    assert t.event_types().count(UrgentDataReceived) == 1


# -- window scale edge cases (RFC 7323 §2) ----------------------------------------


def test_our_window_scale_caps_at_14() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 31), wscale=0)
    assert t.conn.rcv_wscale == 14


def test_peer_scale_14_gives_gigabyte_window() -> None:
    t = established(opts(window_scaling=True), wscale=14)
    t.recv("A", ack=L(1), window=0xFFFF)
    assert t.conn.snd_wnd == 0xFFFF << 14


def test_window_field_capped_without_scaling() -> None:
    t = established(opts(recv_buffer=1 << 20))
    t.recv("PA", payload=b"x")
    t.expect("A", window=0xFFFF)


def test_small_buffer_needs_no_scale() -> None:
    t = established(opts(window_scaling=True, recv_buffer=60000), wscale=3)
    assert t.conn.rcv_wscale == 0
    t.recv("PA", payload=b"x")
    t.expect("A", window=60000 - 1)


def test_scaled_window_rounds_up_never_below_free_space() -> None:
    t = established(opts(window_scaling=True, recv_buffer=100_000), wscale=0)
    assert t.conn.rcv_wscale == 1
    t.recv("PA", payload=b"x" * 3)
    seg = t.expect("A")
    assert seg.window << 1 >= 100_000 - 3


def test_zero_scaled_window_reported_as_zero() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 17), wscale=0)
    t.recv("PA", payload=b"x" * 1400)
    t.output()
    while t.conn.recv_buffer.free:
        t.recv("A", payload=b"y" * min(1400, t.conn.recv_buffer.free))
        t.output()
    t.recv("PA", payload=b"z")
    t.expect("A", window=0)


def test_acks_for_out_of_window_empty_segments_are_rate_limited() -> None:
    """ACK-storm protection: one reply per 0.5 s for empty out-of-window segments."""
    t = established()
    t.recv("A", seq=R(-5000), advance_peer=False)
    t.expect("A", ack=R(1))
    t.recv("A", seq=R(-5000), advance_peer=False)
    t.expect_nothing()
    t.advance(0.5)
    t.recv("A", seq=R(-5000), advance_peer=False)
    t.expect("A", ack=R(1))


def test_out_of_window_data_is_always_acked() -> None:
    t = established()
    for _ in range(3):
        t.recv("PA", seq=R(-100), payload=b"old", advance_peer=False)
        t.expect("A", ack=R(1))


def test_send_urgent_sets_urg_and_pointer_past_the_data() -> None:
    t = established(opts(nodelay=True), mss=4)
    t.send(b"ab")
    t.conn.send_urgent(b"!!")
    seg = t.expect("PAU", seq=L(1), payload=b"ab!!")
    assert seg.urgent == 4
    t.send(b"later")
    later = t.expect("PA", seq=L(5), payload=b"later")
    assert not later.flags & 0x20  # URG ends with the urgent data


def test_urgent_pointer_may_point_past_what_the_send_buffer_holds() -> None:
    """A transport's queue holds bytes written after the send buffer filled: the
    pointer names the end of everything written (MUST-31: any length)."""
    t = established(opts(nodelay=True, send_buffer=4), mss=100)
    assert t.send(b"abcdefgh") == 4
    t.conn.mark_urgent(queued_beyond=4)
    seg = t.expect("PAU", seq=L(1), payload=b"abcd")
    assert seg.urgent == 8


def test_urgent_mode_ends_once_the_urgent_data_is_acknowledged() -> None:
    t = established(opts(nodelay=True), mss=100)
    t.conn.gso_max = 1000
    t.conn.send_urgent(b"!")
    t.expect("PAU", payload=b"!")
    t.recv("A", ack=L(2))
    assert t.conn.snd_up is None
    t.send(b"x" * 400)
    assert [s.gso_size for s in t.output()] == [100]  # one super-segment again


def test_exactly_filling_the_send_buffer_still_reports_space_later() -> None:
    t = established(opts(send_buffer=10))
    assert t.send(b"0123456789") == 10
    t.expect("PA")
    t.recv("A", ack=L(11))
    assert SendSpaceAvailable in t.event_types()


def test_payload_views_into_a_reused_receive_buffer_are_copied() -> None:
    """The stack decodes into one preallocated buffer (recv_into): the core must copy
    what it keeps, in order and out of order alike."""
    from aiotcp.core.segment import ACK, Segment
    from aiotcp.testing.corekit import LOCAL, REMOTE

    t = established()
    rx = bytearray(b"second" + b"first!")
    ooo = Segment(REMOTE[1], LOCAL[1], R(7), L(1), ACK, 5000, 0, memoryview(rx)[:6])
    t.deliver(ooo)
    rx[:6] = b"XXXXXX"  # the buffer is reused for the next packet
    first = Segment(REMOTE[1], LOCAL[1], R(1), L(1), ACK, 5000, 0, memoryview(rx)[6:])
    t.deliver(first)
    rx[:] = b"Y" * len(rx)
    assert t.read() == b"first!second"


def test_paws_rejects_old_timestamp() -> None:
    """RFC 7323 §5.3: a segment whose TSval is older than TS.Recent is a duplicate."""
    t = established(opts(timestamps=True), ts_val=1000, ts_ecr=1)
    t.recv("PA", payload=b"new", ts_val=1001)
    t.output()
    t.recv("PA", payload=b"old", ts_val=900)
    t.expect("A", ack=R(4))
    assert t.conn.counters.paws_rejected == 1
    assert t.read() == b"new"


def test_ts_recent_is_taken_only_from_a_segment_that_is_accepted() -> None:
    """RFC 7323 §4.3 (Linux: tcp_ack before tcp_replace_ts_recent): a segment whose
    ACK acknowledges data never sent is dropped, so its TSval must not become
    TS.Recent, or PAWS would then drop the peer's next valid segment (an older
    TSval) and every one after it: the connection would stall."""
    t = established(opts(timestamps=True), ts_val=1000, ts_ecr=1)
    t.recv("PA", ack=L(500), payload=b"bad", ts_val=5000, advance_peer=False)
    t.expect("A", ack=R(1), ts_ecr=1000)  # RFC 5961 §5.2 challenge ACK; dropped
    assert t.conn.ts_recent == 1000
    t.recv("PA", payload=b"good", ts_val=1001)
    t.expect("A", ack=R(5), ts_ecr=1001)
    assert t.read() == b"good"
    assert t.conn.counters.paws_rejected == 0


def test_an_unacceptable_ack_moves_neither_the_window_nor_the_ecn_echo() -> None:
    """The ACK check drops the segment before anything else it carries is believed:
    its window is not taken, and its CE mark is not echoed."""
    t = ecn_client()
    window = t.conn.snd_wnd
    bad = Segment(REMOTE[1], LOCAL[1], R(1), L(500), ACK, 10, 0, b"x", ecn=CE)
    t.deliver(bad)
    t.expect("A", ack=R(1))  # the challenge ACK, without ECE
    assert t.conn.snd_wnd == window


def test_paws_forgets_ts_recent_after_24_days_idle() -> None:
    """RFC 7323 §5.5: timestamps may have wrapped after 24 days; accept again."""
    t = established(opts(timestamps=True, keepalive=False), ts_val=1000, ts_ecr=1)
    t.now += 25 * 24 * 3600
    t.recv("PA", payload=b"late", ts_val=5)
    assert t.read() == b"late"
    assert t.conn.ts_recent == 5


# -- coalescing a batch of cumulative ACKs -------------------------------------------


def _ack(n: int, flags: int = ACK, payload: bytes = b"") -> Segment:
    return Segment(80, 49152, R(1), L(1 + n), flags, 60000, 0, payload)


def _sender() -> Harness:
    t = established(opts(initial_window=10, nodelay=True), mss=100, window=60000)
    t.send(b"x" * 1000)
    t.output()
    return t


def test_a_batch_of_advancing_pure_acks_needs_only_its_newest() -> None:
    c = _sender().conn
    assert c.ack_superseded(_ack(200), _ack(400))
    assert not c.ack_superseded(_ack(400), _ack(400))  # a duplicate ACK counts on its own
    assert not c.ack_superseded(_ack(0), _ack(400))  # does not advance SND.UNA
    assert not c.ack_superseded(_ack(200), _ack(400, payload=b"d"))  # data rides along
    assert not c.ack_superseded(_ack(200, flags=ACK | ECE), _ack(400))
    sacked = _ack(200)
    sacked.sack_blocks = ((L(301), L(401)),)
    assert not c.ack_superseded(sacked, _ack(400))
    assert not c.ack_superseded(_ack(200), _ack(2000))  # acks what was never sent
    assert c.counters.acks_coalesced == 1


def test_the_newest_ack_alone_leaves_the_sender_as_all_of_them_would() -> None:
    every, newest = _sender(), _sender()
    for n in (100, 200, 300, 400):
        every.deliver(_ack(n))
    newest.deliver(_ack(400))
    for t in (every, newest):
        t.output()
    a, b = every.conn, newest.conn
    assert (a.snd_una, a.snd_wnd, a.cc.cwnd, len(a.send_buffer)) == (
        b.snd_una,
        b.snd_wnd,
        b.cc.cwnd,
        len(b.send_buffer),
    )


def test_batch_that_fills_its_own_hole_gets_one_cumulative_ack() -> None:
    """A segment a moment behind its successor, in the same receive batch (veth
    delivers a burst from two CPUs): no duplicate ACK, whose SACK block would have
    the sender retransmit at once."""
    t = established(opts(sack=True), sack_permitted=True)
    t.recv("PA", seq=R(11), payload=b"B" * 10, advance_peer=False)
    t.recv("PA", seq=R(1), payload=b"A" * 10, advance_peer=False)
    out = t.output()
    assert [(s.ack, s.sack_blocks) for s in out] == [(R(21), ())]
    assert t.read() == b"A" * 10 + b"B" * 10


@pytest.mark.parametrize("sack", [False, True])
def test_batch_that_leaves_a_hole_gets_one_duplicate_ack_per_segment(sack: bool) -> None:
    """RFC 5681 §4.2: one duplicate ACK per out-of-order segment, batch or not, so a
    sender without SACK still counts to three."""
    t = established(opts(sack=sack), sack_permitted=sack)
    for start in (11, 21, 31):
        t.recv("PA", seq=R(start), payload=b"x" * 10, advance_peer=False)
    out = t.output()
    assert [s.ack for s in out] == [R(1)] * 3
    assert all(s.sack_blocks == (((R(11), R(41)),) if sack else ()) for s in out)
    assert t.conn.counters.ooo_segments == 3
