"""The sender's scoreboard behind a hole: SACKed records join.

Behind one lost segment every ACK extends a SACK block by a segment.  The records
those extensions SACK are joined (their send times have been used), which keeps
an ACK's cost independent of the window; these tests check that the answers are
the ones a record per segment gives.
"""

from __future__ import annotations

from aiotcp.core.scoreboard import EVER_RETRANS, SACKED, Scoreboard

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
