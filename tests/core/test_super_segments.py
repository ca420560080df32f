"""Super-segments: the core emits one segment of many MSS for the GSO path.

With ``gso_max`` set (the runtime sets it once an AF_PACKET sender exists) a run of
full-sized segments leaves as one ``Segment`` carrying ``gso_size``; the kernel, or
``Segment.split`` on the raw path, cuts it into wire segments.  What goes on the
wire must be exactly what the MSS-at-a-time sender would have sent.
"""

from __future__ import annotations

import hashlib

import pytest

from aiotcp.core.segment import ACK, CWR, FIN, PSH, Segment
from aiotcp.testing.corekit import L, LinkProfile, connected_pair, ecn_client, established, opts

MSS = 1000
GSO = 64_000


def test_a_run_of_full_segments_is_one_super_segment() -> None:
    t = established(opts(initial_window=100), mss=MSS, window=60_000)
    t.conn.gso_max = GSO
    t.send(b"z" * 20_500)
    seg = t.expect("A", seq=L(1))
    assert len(seg.payload) == 20_000 and seg.gso_size == MSS
    assert seg.wire_segments == 20
    t.expect_nothing()  # Nagle holds the 500-byte tail while data is in flight


def test_without_gso_max_segments_stay_mss_sized() -> None:
    t = established(opts(initial_window=100), mss=MSS, window=60_000)
    t.send(b"z" * 3_000)
    assert [len(s.payload) for s in t.output()] == [MSS] * 3


def test_nodelay_puts_the_short_tail_in_the_super_segment() -> None:
    t = established(opts(initial_window=100, nodelay=True), mss=MSS, window=60_000)
    t.conn.gso_max = GSO
    t.send(b"z" * 2_500)
    seg = t.expect("PA", seq=L(1))
    assert len(seg.payload) == 2_500 and seg.wire_segments == 3
    pieces = seg.split()
    assert [len(p.payload) for p in pieces] == [1000, 1000, 500]
    assert [p.flags for p in pieces] == [ACK, ACK, ACK | PSH]


def test_cork_sends_whole_frames_only_until_cleared() -> None:
    """Autocorking: while corked (a burst of large writes, until the next loop
    iteration) only whole frames leave; what is short of one waits for the burst's
    next write, and uncorking sends what is left, tail and all."""
    t = established(opts(initial_window=100, nodelay=True), mss=MSS, window=200_000)
    t.conn.gso_max = GSO
    t.conn.cork = True
    t.send(b"z" * 2_500)
    t.expect_nothing()  # short of a frame: the next write may fill it
    t.send(b"z" * 70_000)
    seg = t.expect("A", seq=L(1))
    assert len(seg.payload) == GSO and seg.wire_segments == GSO // MSS
    t.expect_nothing()  # 8,500 bytes left: not a frame
    t.conn.cork = False
    seg = t.expect("PA", seq=L(GSO + 1))
    assert len(seg.payload) == 8_500


def test_a_window_limited_cork_still_sends() -> None:
    """A frame the peer's window cuts short is all that can go: the cork holds only
    what more data would lengthen."""
    t = established(opts(initial_window=100, nodelay=True), mss=MSS, window=30_000)
    t.conn.gso_max = GSO
    t.conn.cork = True
    t.send(b"z" * 50_000)
    seg = t.expect("A", seq=L(1))
    assert len(seg.payload) == 30_000


def test_a_short_frame_waits_for_the_ack_that_brings_more_data() -> None:
    """Linux's autocorking: with two full frames in flight and the application's
    bytes not fitting the send buffer, the ragged end waits for the next ACK, which
    makes room for them; the frames stay whole instead of a runt at every ACK."""
    t = established(
        opts(initial_window=1_000, nodelay=True, send_buffer=150_000), mss=MSS, window=1_000_000
    )
    t.conn.gso_max = GSO
    data = b"z" * 400_000
    taken = t.send(data)
    assert taken == 150_000
    assert [len(s.payload) for s in t.output()] == [GSO, GSO]  # 22,000 wait
    t.recv("A", ack=L(GSO + 1), window=1_000_000)
    taken += t.send(data[taken:])  # the ACK made room: the application writes more
    assert [len(s.payload) for s in t.output()] == [GSO]  # 22,000 + 64,000 → one frame
    assert t.conn.counters.frames_deferred >= 2


def test_a_short_frame_goes_when_nothing_more_is_coming() -> None:
    """All the application's data fits: the tail leaves at once, frame or not."""
    t = established(opts(initial_window=1_000, nodelay=True), mss=MSS, window=1_000_000)
    t.conn.gso_max = GSO
    t.send(b"z" * 150_000)
    assert [len(s.payload) for s in t.output()] == [GSO, GSO, 22_000]


@pytest.mark.parametrize(("ack_after", "expected"), [(0.006, [GSO]), (0.001, [GSO, 36_000])])
def test_a_window_cut_frame_waits_only_when_an_ack_is_due(
    ack_after: float, expected: list[int]
) -> None:
    """tcp_tso_should_defer: a frame the window cuts to less than a third of it waits
    for the next ACK only once the oldest flight has been out half a round trip
    (SRTT 10 ms here); before that, the next ACK is too far off to wait for."""
    t = established(
        opts(initial_window=1_000, nodelay=True, send_buffer=1_000_000), mss=MSS, window=400_000
    )
    t.conn.gso_max = GSO
    t.conn.rtt.srtt = 0.010
    t.send(b"z" * 600_000)
    assert [len(s.payload) for s in t.output()] == [GSO] * 6 + [16_000]  # the window's end
    t.advance(ack_after)
    t.recv("A", ack=L(100_001), window=400_000)  # 100,000 more may go
    assert [len(s.payload) for s in t.output()] == expected


@pytest.mark.parametrize(("sent_before", "expected"), [(0.0005, []), (0.006, [40_000])])
def test_a_short_frame_waits_only_within_a_millisecond_of_the_last_send(
    sent_before: float, expected: list[int]
) -> None:
    """tcp_tso_should_defer defers only within the jiffy of the last departure: an
    ACK that opens less than a frame long after anything left sends it at once
    (a window of a dozen segments on a long path, ACKs milliseconds apart), but
    one that comes in a burst, right after a send, waits for the next."""
    t = established(
        opts(initial_window=1_000, nodelay=True, send_buffer=1_000_000), mss=MSS, window=400_000
    )
    t.conn.gso_max = GSO
    t.conn.rtt.srtt = 0.010
    t.send(b"z" * 600_000)
    assert [len(s.payload) for s in t.output()] == [GSO] * 6 + [16_000]
    t.advance(0.006 - sent_before)
    t.conn._last_send = t.now  # something left (a retransmission, say) just then
    t.advance(sent_before)
    t.recv("A", ack=L(40_001), window=400_000)  # 40,000 more may go
    assert [len(s.payload) for s in t.output()] == expected


def test_a_short_frame_never_waits_in_loss_recovery() -> None:
    """tcp_tso_should_defer sends at once in Recovery: PRR lets a few segments go per
    ACK, and holding them for a fuller frame would stall the recovery.  Here an ACK
    comes half a millisecond after the last send, with the oldest flight (the
    retransmission) over half an RTT old: outside recovery that frame would wait."""
    t = established(
        opts(initial_window=1_000, nodelay=True, send_buffer=1_000_000, sack=True),
        mss=MSS,
        window=400_000,
        sack_permitted=True,
    )
    t.conn.gso_max = GSO
    t.conn.rtt.srtt = 0.010
    t.send(b"z" * 600_000)
    assert [len(s.payload) for s in t.output()] == [GSO] * 6 + [16_000]

    def sacked(hi: int) -> list[tuple[int, int]]:  # segment 1 lost, 2..hi arrived
        t.recv("A", ack=L(1), window=1_000_000, sack_blocks=((L(1 + MSS), L(1 + hi * MSS)),))
        return [(s.seq, len(s.payload)) for s in t.output() if s.payload]

    assert sacked(4)[0] == (L(1), MSS)  # recovery: the retransmission first
    t.advance(0.006)
    assert sacked(10)  # PRR lets new data go: the last send is now
    t.advance(0.0005)
    deferred = t.conn.counters.frames_deferred
    out = sacked(14)
    assert t.conn.recovery.in_recovery
    assert out and all(n < GSO for _, n in out)  # a short frame, sent
    assert t.conn.counters.frames_deferred == deferred


def test_cork_never_holds_a_fin_or_the_data_before_it() -> None:
    t = established(opts(initial_window=100, nodelay=True), mss=MSS, window=60_000)
    t.conn.gso_max = GSO
    t.conn.cork = True
    t.send(b"z" * 2_500)
    t.conn.shutdown_write()
    segs = t.output()
    assert sum(len(s.payload) for s in segs) == 2_500 and segs[-1].flags & FIN


def test_fin_rides_on_the_last_wire_segment() -> None:
    t = established(opts(initial_window=100), mss=MSS, window=60_000)
    t.conn.gso_max = GSO
    t.send(b"z" * 2_500)
    t.conn.shutdown_write()
    seg = t.expect("FPA", seq=L(1))
    assert len(seg.payload) == 2_500
    flags = [p.flags for p in seg.split()]
    assert flags == [ACK, ACK, ACK | PSH | FIN]
    assert t.conn.snd_nxt == L(2_502)


def test_window_and_cwnd_limits_cut_at_a_whole_segment() -> None:
    t = established(opts(initial_window=10), mss=MSS, window=7_500)
    t.conn.gso_max = GSO
    t.send(b"z" * 50_000)
    seg = t.expect("A", seq=L(1))
    assert len(seg.payload) == 7_000  # the 500 bytes left in the window would be a runt
    t.expect_nothing()


def test_super_segment_never_exceeds_gso_max() -> None:
    t = established(opts(initial_window=100, send_buffer=200_000), mss=MSS, window=60_000)
    t.conn.gso_max = 25_500
    t.send(b"z" * 60_000)
    sizes = [len(s.payload) for s in t.output()]
    assert sizes == [25_000, 25_000, 10_000]


def test_urgent_data_is_never_in_a_super_segment() -> None:
    t = established(opts(initial_window=100, nodelay=True), mss=MSS, window=60_000)
    t.conn.gso_max = GSO
    t.conn.send(b"u" * 3_000)
    t.conn.send_urgent(b"!")
    out = t.output()
    assert sum(len(s.payload) for s in out) == 3_001
    assert all(not s.gso_size for s in out)


def test_cwr_goes_on_a_single_segment_first() -> None:
    t = ecn_client(congestion="newreno", initial_window=10)
    t.conn.gso_max = GSO
    t.send(b"d" * (10 * MSS))
    assert [s.wire_segments for s in t.output()] == [10]
    t.recv("AE", ack=L(1 + MSS))  # ECE: reduce, and the next new data carries CWR
    t.recv("A", ack=L(1 + 9 * MSS))
    t.send(b"e" * (4 * MSS))
    out = [s for s in t.output() if s.payload]
    assert out[0].flags & CWR and out[0].wire_segments == 1
    assert not any(s.flags & CWR for s in out[1:])
    assert sum(s.wire_segments for s in out) >= 2


def test_split_matches_the_kernel_rules() -> None:
    seg = Segment(1, 2, 0xFFFF_FFA0, 7, ACK | PSH | FIN, 100, 0, bytes(range(250)), ts_val=5)
    seg.gso_size = 100
    pieces = seg.split()
    assert [p.seq for p in pieces] == [0xFFFF_FFA0, 0x0000_0004, 0x0000_0068]  # wraps
    assert b"".join(bytes(p.payload) for p in pieces) == bytes(range(250))
    assert [p.flags for p in pieces] == [ACK, ACK, ACK | PSH | FIN]
    assert FIN & pieces[-1].flags
    assert all(p.ts_val == 5 and p.ack == 7 and p.window == 100 for p in pieces)
    assert seg.wire_segments == 3


def test_segments_out_counts_wire_segments() -> None:
    t = established(opts(initial_window=100), mss=MSS, window=60_000)
    t.conn.gso_max = GSO
    before = t.conn.counters.segments_out
    t.send(b"z" * 30_000)
    assert len(t.output()) == 1
    assert t.conn.counters.segments_out - before == 30


def transfer(gso: bool, loss: float, seed: int) -> tuple[str, int, int]:
    link = connected_pair(
        opts(send_buffer=1 << 20, recv_buffer=1 << 20, nodelay=True, window_scaling=True),
        opts(send_buffer=1 << 20, recv_buffer=1 << 20, window_scaling=True),
        LinkProfile(delay=0.005, loss=loss),
        seed=seed,
    )
    if gso:
        link.a.gso_max = GSO
    data = bytes((i * 7 + seed) & 0xFF for i in range(2_000_000))
    link.write(False, data, then_shutdown=True)
    link.run_until(lambda: link.b.eof_received, timeout=600)
    digest = hashlib.sha256(bytes(link.received[True])).hexdigest()
    assert digest == hashlib.sha256(data).hexdigest()
    c = link.a.counters
    return digest, c.segments_out, c.retransmits


def test_transfer_under_loss_is_byte_exact_with_super_segments() -> None:
    for seed in range(3):
        transfer(gso=True, loss=0.03, seed=seed)


def test_super_segments_put_the_same_segments_on_the_wire() -> None:
    # Without loss the two senders must produce the same number of wire segments.
    _, plain, _ = transfer(gso=False, loss=0.0, seed=1)
    _, supers, _ = transfer(gso=True, loss=0.0, seed=1)
    assert supers == plain


def test_without_nodelay_nagle_holds_the_tail() -> None:
    t = established(opts(initial_window=100), mss=MSS, window=60_000)
    t.conn.gso_max = 5_500
    t.send(b"a" * 5_300)
    assert len(t.expect("A").payload) == 5_000
    t.expect_nothing()  # Nagle: the runt waits for the ACK
    t.recv("A", ack=L(5_001))
    t.expect("PA", seq=L(5_001), payload=b"a" * 300)
