"""Every synchronized state x every kind of segment (RFC 9293 §3.10.7.4), as a table.

Each row: (state, segment kind) -> (state afterwards, flags of the reply or None).
Fixtures: ESTABLISHED has nothing outstanding; FIN-WAIT-1, CLOSING and LAST-ACK have
our FIN outstanding (SND.NXT = ISS+2); the FIN-WAIT states come from ``close()`` so
data arriving there is answered with RST (Linux, RFC 2525 §2.17).
"""

from __future__ import annotations

import pytest

from aiotcp.core.seq import seq_add
from aiotcp.core.state import State
from aiotcp.testing.corekit import STATE_FIXTURES, Harness, L

S = State

KINDS = {
    # kind: (flags, seq offset from RCV.NXT, ack or None for SND.NXT, payload)
    "rst_exact": ("R", 0, None, b""),
    "rst_in_window": ("R", 50, None, b""),
    "rst_out_of_window": ("R", 10_000_000, None, b""),
    "syn_in_window": ("S", 10, None, b""),
    "syn_out_of_window": ("S", 10_000_000, None, b""),
    "ack_current": ("A", 0, None, b""),
    "ack_unsent": ("A", 0, "unsent", b""),
    "ack_without_ack_flag": ("", 0, None, b"x"),
    "data": ("PA", 0, None, b"data"),
    "data_out_of_window": ("PA", 10_000_000, None, b"data"),
    "data_old_duplicate": ("PA", -4, None, b"dupe"),
    "fin": ("FA", 0, "una", b""),
    "fin_acking_our_fin": ("FA", 0, None, b""),
    "fin_retransmitted": ("FA", -1, None, b""),
}

# (state, kind): (next state, reply flags or None)
TABLE: dict[tuple[State, str], tuple[State, str | None]] = {
    (S.ESTABLISHED, "rst_exact"): (S.CLOSED, None),
    (S.ESTABLISHED, "rst_in_window"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "rst_out_of_window"): (S.ESTABLISHED, None),
    (S.ESTABLISHED, "syn_in_window"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "syn_out_of_window"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "ack_current"): (S.ESTABLISHED, None),
    (S.ESTABLISHED, "ack_unsent"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "ack_without_ack_flag"): (S.ESTABLISHED, None),
    (S.ESTABLISHED, "data"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "data_out_of_window"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "data_old_duplicate"): (S.ESTABLISHED, "A"),
    (S.ESTABLISHED, "fin"): (S.CLOSE_WAIT, "A"),
    (S.ESTABLISHED, "fin_acking_our_fin"): (S.CLOSE_WAIT, "A"),
    (S.ESTABLISHED, "fin_retransmitted"): (S.ESTABLISHED, "A"),
    (S.FIN_WAIT_1, "rst_exact"): (S.CLOSED, None),
    (S.FIN_WAIT_1, "rst_in_window"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_1, "rst_out_of_window"): (S.FIN_WAIT_1, None),
    (S.FIN_WAIT_1, "syn_in_window"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_1, "syn_out_of_window"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_1, "ack_current"): (S.FIN_WAIT_2, None),
    (S.FIN_WAIT_1, "ack_unsent"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_1, "ack_without_ack_flag"): (S.FIN_WAIT_1, None),
    (S.FIN_WAIT_1, "data"): (S.CLOSED, "R"),
    (S.FIN_WAIT_1, "data_out_of_window"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_1, "data_old_duplicate"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_1, "fin"): (S.CLOSING, "A"),
    (S.FIN_WAIT_1, "fin_acking_our_fin"): (S.TIME_WAIT, "A"),
    (S.FIN_WAIT_1, "fin_retransmitted"): (S.FIN_WAIT_1, "A"),
    (S.FIN_WAIT_2, "rst_exact"): (S.CLOSED, None),
    (S.FIN_WAIT_2, "rst_in_window"): (S.FIN_WAIT_2, "A"),
    (S.FIN_WAIT_2, "rst_out_of_window"): (S.FIN_WAIT_2, None),
    (S.FIN_WAIT_2, "syn_in_window"): (S.FIN_WAIT_2, "A"),
    (S.FIN_WAIT_2, "syn_out_of_window"): (S.FIN_WAIT_2, "A"),
    (S.FIN_WAIT_2, "ack_current"): (S.FIN_WAIT_2, None),
    (S.FIN_WAIT_2, "ack_unsent"): (S.FIN_WAIT_2, "A"),
    (S.FIN_WAIT_2, "ack_without_ack_flag"): (S.FIN_WAIT_2, None),
    (S.FIN_WAIT_2, "data"): (S.CLOSED, "R"),
    (S.FIN_WAIT_2, "data_out_of_window"): (S.FIN_WAIT_2, "A"),
    (S.FIN_WAIT_2, "data_old_duplicate"): (S.FIN_WAIT_2, "A"),
    (S.FIN_WAIT_2, "fin"): (S.TIME_WAIT, "A"),
    (S.FIN_WAIT_2, "fin_acking_our_fin"): (S.TIME_WAIT, "A"),
    (S.FIN_WAIT_2, "fin_retransmitted"): (S.FIN_WAIT_2, "A"),
    (S.CLOSE_WAIT, "rst_exact"): (S.CLOSED, None),
    (S.CLOSE_WAIT, "rst_in_window"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "rst_out_of_window"): (S.CLOSE_WAIT, None),
    (S.CLOSE_WAIT, "syn_in_window"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "syn_out_of_window"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "ack_current"): (S.CLOSE_WAIT, None),
    (S.CLOSE_WAIT, "ack_unsent"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "ack_without_ack_flag"): (S.CLOSE_WAIT, None),
    (S.CLOSE_WAIT, "data"): (S.CLOSE_WAIT, None),  # text after FIN is ignored
    (S.CLOSE_WAIT, "data_out_of_window"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "data_old_duplicate"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "fin"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "fin_acking_our_fin"): (S.CLOSE_WAIT, "A"),
    (S.CLOSE_WAIT, "fin_retransmitted"): (S.CLOSE_WAIT, "A"),
    (S.CLOSING, "rst_exact"): (S.CLOSED, None),
    (S.CLOSING, "rst_in_window"): (S.CLOSING, "A"),
    (S.CLOSING, "rst_out_of_window"): (S.CLOSING, None),
    (S.CLOSING, "syn_in_window"): (S.CLOSING, "A"),
    (S.CLOSING, "syn_out_of_window"): (S.CLOSING, "A"),
    (S.CLOSING, "ack_current"): (S.TIME_WAIT, None),
    (S.CLOSING, "ack_unsent"): (S.CLOSING, "A"),
    (S.CLOSING, "ack_without_ack_flag"): (S.CLOSING, None),
    (S.CLOSING, "data"): (S.TIME_WAIT, None),  # its ACK covers our FIN; text ignored
    (S.CLOSING, "data_out_of_window"): (S.CLOSING, "A"),
    (S.CLOSING, "data_old_duplicate"): (S.CLOSING, "A"),
    (S.CLOSING, "fin"): (S.CLOSING, None),  # "otherwise, ignore the segment"
    (S.CLOSING, "fin_acking_our_fin"): (S.TIME_WAIT, None),
    (S.CLOSING, "fin_retransmitted"): (S.CLOSING, "A"),
    (S.LAST_ACK, "rst_exact"): (S.CLOSED, None),
    (S.LAST_ACK, "rst_in_window"): (S.LAST_ACK, "A"),
    (S.LAST_ACK, "rst_out_of_window"): (S.LAST_ACK, None),
    (S.LAST_ACK, "syn_in_window"): (S.LAST_ACK, "A"),
    (S.LAST_ACK, "syn_out_of_window"): (S.LAST_ACK, "A"),
    (S.LAST_ACK, "ack_current"): (S.CLOSED, None),
    (S.LAST_ACK, "ack_unsent"): (S.LAST_ACK, "A"),
    (S.LAST_ACK, "ack_without_ack_flag"): (S.LAST_ACK, None),
    (S.LAST_ACK, "data"): (S.CLOSED, None),
    (S.LAST_ACK, "data_out_of_window"): (S.LAST_ACK, "A"),
    (S.LAST_ACK, "data_old_duplicate"): (S.LAST_ACK, "A"),
    (S.LAST_ACK, "fin"): (S.LAST_ACK, None),  # only the ACK of our FIN matters
    (S.LAST_ACK, "fin_acking_our_fin"): (S.CLOSED, None),
    (S.LAST_ACK, "fin_retransmitted"): (S.LAST_ACK, "A"),
    (S.TIME_WAIT, "rst_exact"): (S.TIME_WAIT, None),  # RFC 1337
    (S.TIME_WAIT, "rst_in_window"): (S.TIME_WAIT, None),
    (S.TIME_WAIT, "rst_out_of_window"): (S.TIME_WAIT, None),
    (S.TIME_WAIT, "syn_in_window"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "syn_out_of_window"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "ack_current"): (S.TIME_WAIT, None),
    (S.TIME_WAIT, "ack_unsent"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "ack_without_ack_flag"): (S.TIME_WAIT, None),
    (S.TIME_WAIT, "data"): (S.TIME_WAIT, None),
    (S.TIME_WAIT, "data_out_of_window"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "data_old_duplicate"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "fin"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "fin_acking_our_fin"): (S.TIME_WAIT, "A"),
    (S.TIME_WAIT, "fin_retransmitted"): (S.TIME_WAIT, "A"),
    (S.SYN_RECEIVED, "rst_exact"): (S.CLOSED, None),
    (S.SYN_RECEIVED, "rst_in_window"): (S.SYN_RECEIVED, "A"),
    (S.SYN_RECEIVED, "rst_out_of_window"): (S.SYN_RECEIVED, None),
    (S.SYN_RECEIVED, "syn_in_window"): (S.CLOSED, None),  # passive: back to LISTEN
    (S.SYN_RECEIVED, "syn_out_of_window"): (S.SYN_RECEIVED, "A"),
    (S.SYN_RECEIVED, "ack_current"): (S.ESTABLISHED, None),
    (S.SYN_RECEIVED, "ack_unsent"): (S.SYN_RECEIVED, "R"),
    (S.SYN_RECEIVED, "ack_without_ack_flag"): (S.SYN_RECEIVED, None),
    (S.SYN_RECEIVED, "data"): (S.ESTABLISHED, "A"),
    (S.SYN_RECEIVED, "data_out_of_window"): (S.SYN_RECEIVED, "A"),
    (S.SYN_RECEIVED, "data_old_duplicate"): (S.SYN_RECEIVED, "A"),
    (S.SYN_RECEIVED, "fin"): (S.SYN_RECEIVED, "R"),  # ack = SND.UNA = ISS: unacceptable
    (S.SYN_RECEIVED, "fin_acking_our_fin"): (S.CLOSE_WAIT, "A"),
    (S.SYN_RECEIVED, "fin_retransmitted"): (S.SYN_RECEIVED, "A"),
}


def _deliver(t: Harness, kind: str) -> None:
    flags, offset, ack, payload = KINDS[kind]
    conn = t.conn
    if ack == "unsent":
        ack_value = seq_add(conn.snd_max, 1000)
    elif ack == "una":
        ack_value = conn.snd_una
    else:
        ack_value = conn.snd_max
    t.recv(
        flags,
        seq=seq_add(conn.rcv_nxt, offset),
        ack=ack_value,
        payload=payload,
        advance_peer=False,
    )


@pytest.mark.parametrize(("state", "kind"), list(TABLE), ids=[f"{s.name}-{k}" for s, k in TABLE])
def test_state_by_segment_kind(state: State, kind: str) -> None:
    t = STATE_FIXTURES[state]()
    _deliver(t, kind)
    expected_state, expected_reply = TABLE[(state, kind)]
    out = [s for s in t.output()]
    assert t.state is expected_state, out
    if expected_reply is None:
        assert out == []
    else:
        assert out, f"expected a {expected_reply} reply"
        t.pending = out
        t.expect(expected_reply)


def test_table_covers_every_synchronized_state_and_kind() -> None:
    states = {s for s, _ in TABLE}
    assert states == {
        S.SYN_RECEIVED, S.ESTABLISHED, S.FIN_WAIT_1, S.FIN_WAIT_2, S.CLOSE_WAIT,
        S.CLOSING, S.LAST_ACK, S.TIME_WAIT,
    }  # fmt: skip
    assert all((s, k) in TABLE for s in states for k in KINDS)
    assert L(0) != 0
