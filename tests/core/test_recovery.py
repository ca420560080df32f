"""Fast retransmit and NewReno (RFC 5681 §3.2, RFC 6582, PRR of RFC 6937); SACK generation
(RFC 2018).  The sender runs NewReno here (CUBIC, the default, has test_cubic.py)."""

from __future__ import annotations

import pytest

from aiotcp.core.congestion import create
from aiotcp.core.congestion.newreno import NewReno
from aiotcp.testing.corekit import L, R, established, opts

MSS = 100


def _flight(segments: int = 8):  # type: ignore[no-untyped-def]
    o = opts(nodelay=True, initial_window=max(segments, 10), congestion="newreno")
    t = established(o, mss=MSS)
    t.send(b"d" * (segments * MSS))
    out = t.output()
    assert len(out) == segments
    return t


def _dupacks(t, n: int, ack: int) -> None:  # type: ignore[no-untyped-def]
    for _ in range(n):
        t.recv("A", ack=ack)


def test_two_duplicate_acks_do_not_retransmit() -> None:
    t = _flight()
    t.recv("A", ack=L(101))
    _dupacks(t, 2, L(101))
    t.expect_nothing()


def test_third_duplicate_ack_triggers_fast_retransmit() -> None:
    t = _flight()
    t.recv("A", ack=L(101))
    _dupacks(t, 3, L(101))
    t.expect("A", seq=L(101), payload=b"d" * MSS)
    assert t.conn.counters.fast_retransmits == 1


def test_fast_retransmit_halves_ssthresh_and_goes_out_at_once() -> None:
    """ssthresh = max(cwnd/2, 2*SMSS) in whole segments, as Linux's
    ``tcp_reno_ssthresh`` (the cwnd grew while it limited the sender: 1000 + the
    segment acknowledged); RFC 6937: the window becomes pipe + sndcnt, and the
    fast retransmit is sent on the third dupack."""
    t = _flight()
    t.recv("A", ack=L(101))
    assert t.conn.cc.cwnd == 1100
    _dupacks(t, 3, L(101))
    assert t.conn.cc.ssthresh == 500  # 11 segments halved, in whole segments
    # pipe: 700 outstanding - 3 segments the dupacks stand for - the lost one.
    assert t.conn.recovery.pipe() == 300
    # Pipe under ssthresh: PRR's slow-start reduction bound (RFC 6937 §3.1) lets
    # the window grow back toward ssthresh, 2 SMSS on this ACK.
    assert t.conn.cc.cwnd == 300 + 200
    t.expect("A", seq=L(101))


def test_prr_sends_one_segment_per_two_delivered_while_pipe_exceeds_ssthresh() -> None:
    """RFC 6937 proportional part: sndcnt = ceil(prr_delivered * ssthresh / RecoverFS)
    - prr_out, i.e. NewReno's beta of 1/2 spread over the recovery instead of a pause
    of half a window (RFC 6582's inflation) followed by a burst."""
    t = _flight(20)
    t.send(b"n" * (20 * MSS))  # new data for PRR to clock out
    _dupacks(t, 3, L(1))
    assert [s.seq for s in t.output() if s.payload] == [L(1)]
    sent = 0
    for _ in range(10):
        t.recv("A", ack=L(1))
        sent += sum(1 for s in t.output() if s.payload)
    # 11 segments delivered since recovery began: 5.5 may be sent, and the fast
    # retransmit was the first of them.
    assert sent == 4


def test_partial_ack_retransmits_next_hole() -> None:
    """RFC 6582 §3.2 step 5."""
    t = _flight()
    _dupacks(t, 3, L(1))
    t.expect("A", seq=L(1))
    t.output()
    t.recv("A", ack=L(301))  # partial: below the recovery point
    t.expect("A", seq=L(301), payload=b"d" * MSS)


def test_full_ack_exits_recovery_with_cwnd_at_most_ssthresh() -> None:
    t = _flight()
    _dupacks(t, 3, L(1))
    t.output()
    t.recv("A", ack=L(801))
    assert not t.conn.recovery.in_recovery
    assert t.conn.cc.cwnd <= t.conn.cc.ssthresh


def test_no_second_fast_retransmit_for_same_window() -> None:
    """RFC 6582 §3.2 step 2: duplicate ACKs below ``recover`` after an RTO."""
    t = _flight()
    t.advance(t.conn.rtt.rto)
    t.output()
    _dupacks(t, 3, L(1))
    assert t.conn.counters.fast_retransmits == 0


def test_dup_ack_definition_excludes_window_updates_and_data() -> None:
    """RFC 5681 §2: same ACK, no data, same window, data outstanding."""
    t = _flight()
    t.recv("A", ack=L(1), window=1234)
    t.recv("A", ack=L(1), payload=b"x")
    t.recv("A", ack=L(1), payload=b"y")
    assert t.conn.counters.dup_acks == 0


def test_no_dup_acks_without_outstanding_data() -> None:
    t = established()
    _dupacks(t, 5, L(1))
    assert t.conn.counters.dup_acks == 0


# -- congestion window growth ------------------------------------------------------


def test_slow_start_grows_cwnd_per_ack() -> None:
    cc = NewReno(1000, 10)
    cc.on_ack(1000, 10000, 0.0)
    assert cc.cwnd == 11000


def test_slow_start_counts_every_byte_of_a_stretch_ack() -> None:
    """RFC 3465 byte counting without a per-ACK limit (Linux): batches ACK stretches."""
    cc = NewReno(1000, 10)
    cc.on_ack(5000, 10000, 0.0)
    assert cc.cwnd == 15000


def test_slow_start_stops_at_ssthresh_and_continues_in_avoidance() -> None:
    cc = NewReno(1000, 10)
    cc.ssthresh = 12000
    cc.on_ack(5000, 10000, 0.0)
    assert cc.cwnd == 12000


def test_congestion_avoidance_adds_one_smss_per_window() -> None:
    cc = NewReno(1000, 10)
    cc.ssthresh = 5000
    cc.cwnd = 10000
    for _ in range(9):
        cc.on_ack(1000, 10000, 0.0)
    assert cc.cwnd == 10000
    cc.on_ack(1000, 10000, 0.0)
    assert cc.cwnd == 11000


def test_timeout_sets_loss_window() -> None:
    cc = NewReno(1000, 10)
    cc.cwnd = 20000
    cc.on_timeout(20000, 0.0)
    assert (cc.cwnd, cc.ssthresh) == (1000, 10000)


def test_ssthresh_floor_two_smss() -> None:
    cc = NewReno(1000, 10)
    cc.cwnd = 3000
    cc.on_timeout(3000, 0.0)
    assert cc.ssthresh == 2000


def test_unknown_congestion_algorithm_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown congestion"):
        create("bbr9", 1000)


def test_initial_window_rescaled_to_negotiated_mss() -> None:
    t = established(opts(initial_window=10), mss=500)
    assert t.conn.cc.cwnd == 5000


# -- SACK generation (RFC 2018 §4) ------------------------------------------------


def test_out_of_order_ack_carries_sack_block() -> None:
    t = established(sack_permitted=True)
    t.recv("A", seq=R(101), payload=b"x" * 50, advance_peer=False)
    t.expect("A", ack=R(1), sack_blocks=((R(101), R(151)),))


def test_most_recent_sack_block_first() -> None:
    t = established(sack_permitted=True)
    t.recv("A", seq=R(101), payload=b"x" * 50, advance_peer=False)
    t.output()
    t.recv("A", seq=R(301), payload=b"y" * 50, advance_peer=False)
    seg = t.expect("A")
    assert seg.sack_blocks == ((R(301), R(351)), (R(101), R(151)))


def test_sack_blocks_merge_adjacent_ranges() -> None:
    t = established(sack_permitted=True)
    t.recv("A", seq=R(101), payload=b"x" * 50, advance_peer=False)
    t.recv("A", seq=R(151), payload=b"x" * 50, advance_peer=False)
    out = t.output()
    assert out[-1].sack_blocks == ((R(101), R(201)),)


def test_no_sack_blocks_once_holes_are_filled() -> None:
    t = established(sack_permitted=True)
    t.recv("A", seq=R(11), payload=b"x" * 10, advance_peer=False)
    t.output()
    t.recv("A", seq=R(1), payload=b"y" * 10, advance_peer=False)
    t.expect("A", ack=R(21), sack_blocks=())


def test_no_sack_blocks_when_not_negotiated() -> None:
    t = established()
    t.recv("A", seq=R(101), payload=b"x" * 50, advance_peer=False)
    t.expect("A", sack_blocks=())


def test_at_most_three_sack_blocks_with_timestamps() -> None:
    t = established(opts(timestamps=True), sack_permitted=True, ts_val=1, ts_ecr=1)
    for i in range(5):
        t.recv("A", seq=R(101 + 100 * i), payload=b"z" * 10, advance_peer=False, ts_val=2)
    out = t.output()
    assert len(out[-1].sack_blocks) == 3


# -- bounded out-of-order queue ---------------------------------------------------


def test_out_of_order_queue_is_bounded() -> None:
    t = established(opts(ooo_max_segments=2))
    for i in range(4):
        t.recv("A", seq=R(101 + 100 * i), payload=b"q" * 10, advance_peer=False)
    assert t.conn.recv_buffer.out_of_order_bytes == 20
    assert t.conn.counters.ooo_dropped == 2


def test_bounded_queue_still_merges_into_existing_ranges() -> None:
    t = established(opts(ooo_max_segments=1))
    t.recv("A", seq=R(101), payload=b"q" * 10, advance_peer=False)
    t.recv("A", seq=R(111), payload=b"q" * 10, advance_peer=False)
    assert t.conn.recv_buffer.out_of_order_bytes == 20


def test_cwnd_restarts_after_idle_longer_than_rto() -> None:
    """RFC 5681 §4.1: RW = min(IW, cwnd) after an idle period."""
    t = established(opts(nodelay=True, initial_window=2), mss=100, window=60000)
    for _ in range(5):
        t.send(b"x" * 400)
        t.output()
        t.recv("A", ack=t.conn.snd_max)
    assert t.conn.cc.cwnd > 200
    t.advance(5.0)
    t.send(b"y" * 1000)
    assert len(t.output()) == 2


def test_no_idle_restart_for_back_to_back_sends() -> None:
    t = established(opts(nodelay=True, initial_window=2), mss=100, window=60000)
    t.send(b"x" * 400)
    t.output()
    t.recv("A", ack=t.conn.snd_max)
    cwnd = t.conn.cc.cwnd
    t.send(b"y" * 100)
    t.output()
    assert t.conn.cc.cwnd == cwnd


# -- small windows: limited transmit (RFC 3042), early retransmit (RFC 5827) ---------


def test_limited_transmit_sends_new_data_on_first_two_dupacks() -> None:
    t = established(opts(nodelay=True, initial_window=2), mss=MSS, window=60000)
    t.send(b"d" * 600)
    assert len(t.output()) == 2  # cwnd = 2 segments
    t.recv("A", ack=L(1), window=60000)  # first duplicate ACK
    t.expect("A", seq=L(201), payload=b"d" * MSS)
    t.recv("A", ack=L(1), window=60000)  # second
    t.expect("A", seq=L(301))
    t.recv("A", ack=L(1), window=60000)  # third: fast retransmit, no more new data
    t.expect("A", seq=L(1))


def test_early_retransmit_with_few_segments_outstanding() -> None:
    """RFC 5827: two segments outstanding, nothing more to send: one dupack is enough."""
    t = established(opts(nodelay=True), mss=MSS, window=60000)
    t.send(b"e" * 200)
    assert len(t.output()) == 2
    t.recv("A", ack=L(1), window=60000)
    t.expect("A", seq=L(1), payload=b"e" * MSS)
    assert t.conn.counters.fast_retransmits == 1


def test_echo_older_than_last_timeout_is_not_an_rtt_sample() -> None:
    """Timestamp echoes from before an RTO time the outage, not the path."""
    t = established(opts(timestamps=True), ts_val=1, ts_ecr=0)
    t.send(b"x" * 10)
    first = t.expect("PA")
    t.advance(10)  # many timeouts: the peer's ACKs were all lost
    t.output()
    srtt = t.conn.rtt.srtt
    t.recv("A", ack=L(11), ts_val=2, ts_ecr=first.ts_val)  # echo of the 1st send
    assert t.conn.rtt.srtt == srtt
    assert t.conn.rtt.rto < 1.0


@pytest.mark.parametrize("algorithm", ["newreno", "cubic"])
def test_slow_start_doubles_the_flight_every_round_trip(algorithm: str) -> None:
    """RFC 5681 §3.1 (and RFC 9438 §4.10 for CUBIC): each ACKed segment adds one,
    so the segments sent per round trip go 10, 20, 40, 80."""
    t = established(opts(nodelay=True, congestion=algorithm), mss=MSS, window=65535)
    t.conn.snd_wscale = 4  # room for 80 segments in the peer's window
    t.recv("A", ack=L(1), window=65535)
    t.send(b"s" * (200 * MSS))
    rounds = []
    for _ in range(4):
        out = [s for s in t.output() if s.payload]
        rounds.append(len(out))
        t.advance(0.01)  # one round trip later every segment's ACK arrives
        for seg in out:
            t.recv("A", ack=(seg.seq + len(seg.payload)) % 2**32, window=65535)
    assert rounds == [10, 20, 40, 80]


def test_pacing_rate_is_twice_cwnd_per_rtt_in_slow_start_then_1_2() -> None:
    """The controller's second output (Linux tcp_update_pacing_rate)."""
    cc = NewReno(1000, 10)
    assert cc.pacing_rate is None  # no RTT yet
    from aiotcp.core.rto import RttEstimator

    cc.rtt = RttEstimator()
    cc.rtt.sample(0.1)
    assert cc.pacing_rate == pytest.approx(2 * 10_000 / 0.1)
    cc.ssthresh = 12_000
    assert cc.pacing_rate == pytest.approx(1.2 * 10_000 / 0.1)


def _sack_sender():  # type: ignore[no-untyped-def]
    """NewReno with SACK, 10 segments out of 40 queued."""
    o = opts(nodelay=True, sack=True, congestion="newreno")
    t = established(o, mss=MSS, sack_permitted=True)
    t.send(b"d" * (40 * MSS))
    assert sum(len(s.payload) for s in t.output()) == 10 * MSS
    return t


def _burst_then_sacks(t) -> None:  # type: ignore[no-untyped-def]
    """One receive batch: cumulative ACKs for segments 1-5, then SACKs for 7-9
    (segment 6 lost), with no output in between."""
    for n in range(1, 6):
        t.recv("A", ack=L(1 + n * MSS))
    for hi in (8, 9, 10):
        t.recv("A", ack=L(1 + 5 * MSS), sack_blocks=((L(1 + 6 * MSS), L(1 + hi * MSS)),))


@pytest.mark.parametrize("batched", [True, False])
def test_a_burst_of_acks_is_sent_into_before_its_sacks_begin_recovery(batched: bool) -> None:
    """The room a burst of cumulative ACKs opens is used before the SACKs at its end
    start recovery, as a sender taking one ACK at a time (Linux) has used it: the
    recovery point (RFC 6582 ``recover``) covers that data, and the new data leaves
    ahead of the retransmission.  Batched or not, the same segments, in the same
    order, with the same recovery point."""
    t = _sack_sender()
    before = t.conn.counters.segments_out
    if batched:
        _burst_then_sacks(t)
    else:
        for n in range(1, 6):
            t.recv("A", ack=L(1 + n * MSS))
            t.pending.extend(t.conn.segments_to_send(t.now))
        for hi in (8, 9, 10):
            t.recv("A", ack=L(1 + 5 * MSS), sack_blocks=((L(1 + 6 * MSS), L(1 + hi * MSS)),))
    out = t.output()
    sent = [(s.seq, len(s.payload)) for s in out if s.payload]
    # Slow start: 5 segments acknowledged, cwnd 15, 5 in flight: 10 new segments.
    new = [(L(1 + n * MSS), MSS) for n in range(10, 20)]
    assert sent[: len(new)] == new
    assert sent[len(new)] == (L(1 + 5 * MSS), MSS)  # then the retransmission
    assert t.conn.recovery._recover == L(1 + 20 * MSS)
    assert t.conn.counters.segments_out == before + len(out)  # each counted once


def test_congestion_avoidance_counts_whole_segments() -> None:
    """A window with a fraction of a segment (PRR can leave one) grows by one SMSS
    per whole-segment window acknowledged — what a round trip acknowledges, since
    only whole segments are in flight — and lands on a whole number of segments."""
    cc = NewReno(1000, 10)
    cc.ssthresh = cc.cwnd = 10_750
    for _ in range(10):
        cc.on_ack(1000, 10_000, 0.0)  # one round trip: ten segments
    assert cc.cwnd == 11_000
