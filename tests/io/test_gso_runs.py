"""Which segments may travel as one GSO super-segment (the kernel re-creates them)."""

from __future__ import annotations

from aiotcp.core.segment import ACK, FIN, PSH, SYN, Segment
from aiotcp.io.gso import runs

MSS = 1448


def data(seq: int, n: int = MSS, flags: int = ACK, **kw: object) -> Segment:
    seg = Segment(1, 2, seq & 0xFFFFFFFF, 77, flags, 500, payload=b"x" * n, ts_val=9, ts_ecr=8)
    for k, v in kw.items():
        setattr(seg, k, v)
    return seg


def sizes(groups: list[list[Segment]]) -> list[int]:
    return [len(g) for g in groups]


def test_consecutive_full_segments_form_one_run_ending_with_psh() -> None:
    segs = [data(i * MSS) for i in range(5)] + [data(5 * MSS, 100, ACK | PSH)]
    assert sizes(runs(segs, 65000)) == [6]


def test_sequence_wraps_inside_a_run() -> None:
    start = 0xFFFFFFFF - MSS
    assert sizes(runs([data(start + i * MSS) for i in range(3)], 65000)) == [3]


def test_a_gap_splits_runs() -> None:
    segs = [data(0), data(MSS), data(3 * MSS)]
    assert sizes(runs(segs, 65000)) == [2, 1]


def test_psh_or_fin_in_the_middle_ends_the_run() -> None:
    segs = [data(0), data(MSS, flags=ACK | PSH), data(2 * MSS), data(3 * MSS, flags=ACK | FIN)]
    assert sizes(runs(segs, 65000)) == [2, 2]


def test_short_segment_ends_the_run() -> None:
    segs = [data(0), data(MSS, 500), data(MSS + 500)]
    assert sizes(runs(segs, 65000)) == [2, 1]


def test_differing_header_fields_split() -> None:
    assert sizes(runs([data(0), data(MSS, ack=78)], 65000)) == [1, 1]
    assert sizes(runs([data(0), data(MSS, window=501)], 65000)) == [1, 1]
    assert sizes(runs([data(0), data(MSS, ts_val=10)], 65000)) == [1, 1]
    assert sizes(runs([data(0), data(MSS, sack_blocks=((1, 2),))], 65000)) == [1, 1]


def test_pure_acks_and_syns_travel_alone() -> None:
    ack = Segment(1, 2, 0, 77, ACK, 500)
    syn = Segment(1, 2, 0, 0, SYN, 500)
    assert sizes(runs([ack, data(0), data(MSS), syn], 65000)) == [1, 2, 1]


def test_limit_caps_the_payload_of_a_run() -> None:
    segs = [data(i * MSS) for i in range(50)]
    groups = runs(segs, 45 * MSS)
    assert sizes(groups) == [45, 5]
