"""The sender's scoreboard behind a hole: SACKed records join, RACK stops early.

Behind one lost segment every ACK extends a SACK block by a segment.  The records
those extensions SACK are joined (their send times have been used), and RACK's
loss detection stops at the first record sent after the newest delivered one.
Both keep an ACK's cost independent of the window; these tests check that the
answers are the ones a record per segment and a full scan give.
"""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from aiotcp.core.scoreboard import EVER_RETRANS, LOST, RETRANS, SACKED, Scoreboard

MSS = 1000


def board() -> Scoreboard:
    b = Scoreboard(0)
    b.set_mss(MSS)
    return b


def test_a_growing_sack_block_stays_one_record() -> None:
    b = board()
    n = 1000
    for k in range(n):
        b.on_sent(k * MSS, MSS, now=k * 1e-5)  # one run each: a record each
    for k in range(2, n + 1):
        b.on_ack(0, ((MSS, k * MSS),), now=0.05 + k * 1e-5, snd_max=n * MSS)
    assert len(b.records) == 2  # the hole, and one SACKed record
    assert b.sack_ranges() == [(MSS, n * MSS)]
    assert b.sacked_bytes == (n - 1) * MSS
    assert b.pipe() == MSS
    lost, _ = b.detect_lost(now=1.0, reo_wnd=0.0)
    assert lost == MSS and b.next_lost(MSS) == (0, MSS)
    b.on_retransmitted(0, MSS, now=1.0)
    d = b.on_ack(n * MSS, (), now=1.05, snd_max=n * MSS)
    assert d.acked == n * MSS and not b.records
    assert b.sacked_bytes == b.lost_bytes == b.retrans_bytes == 0


def test_records_that_differ_are_not_joined() -> None:
    """A SACKed retransmission keeps its mark apart from SACKed originals."""
    b = board()
    for k in range(4):
        b.on_sent(k * MSS, MSS, now=k * 1e-3)
    b.on_retransmitted(MSS, MSS, now=0.01)
    b.on_ack(0, ((MSS, 4 * MSS),), now=0.05, snd_max=4 * MSS)
    flags = [(r.start, r.flags & (SACKED | EVER_RETRANS)) for r in b.records]
    assert flags == [(0, 0), (MSS, SACKED | EVER_RETRANS), (2 * MSS, SACKED)]


def _full_scan(b: Scoreboard, now: float, reo_wnd: float) -> tuple[int, float | None]:
    """RFC 8985 §6.2 step 5 over every record: what ``detect_lost`` must agree with."""
    newly, wait = 0, None
    deadline = b.rack_rtt + reo_wnd
    for rec in b.records:
        if rec.flags & SACKED or rec.flags & (LOST | RETRANS) == LOST:
            continue
        if rec.order > b.rack_order or (rec.order == b.rack_order and rec.end >= b.rack_end):
            continue
        remaining = rec.sent_at + deadline - now
        if remaining <= 0:
            newly += b._mark_lost(rec)
        elif wait is None or remaining > wait:
            wait = remaining
    return newly, wait


step = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 4)),
    st.tuples(st.just("resend"), st.integers(0, 40)),
    st.tuples(st.just("sack"), st.integers(0, 40), st.integers(1, 6)),
    st.tuples(st.just("ack"), st.integers(0, 3)),
    st.tuples(st.just("detect"), st.sampled_from([0.0, 0.002])),
)


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(step, max_size=40))
def test_rack_stopping_early_marks_what_a_full_scan_marks(steps: list[tuple]) -> None:
    b = board()
    now, nxt, una = 0.0, 0, 0
    for op in steps:
        now += 0.003
        if op[0] == "send":
            for _ in range(op[1]):
                b.on_sent(nxt * MSS, MSS, now)
                nxt += 1
        elif op[0] == "resend" and una <= op[1] < nxt:
            b.on_retransmitted(op[1] * MSS, MSS, now)
        elif op[0] == "sack" and una < op[1] < nxt:
            hi = min(op[1] + op[2], nxt)
            b.on_ack(una * MSS, ((op[1] * MSS, hi * MSS),), now, nxt * MSS)
        elif op[0] == "ack" and nxt:
            una = min(una + op[1], nxt)
            b.on_ack(una * MSS, (), now, nxt * MSS)
        elif op[0] == "detect":
            reference = copy.deepcopy(b)
            expected = _full_scan(reference, now, op[1])
            assert b.detect_lost(now, op[1]) == expected
            assert [(r.start, r.end, r.flags) for r in b.records] == [
                (r.start, r.end, r.flags) for r in reference.records
            ]
        assert b.sacked_bytes == sum(r.end - r.start for r in b.records if r.flags & SACKED)
