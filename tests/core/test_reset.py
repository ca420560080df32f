"""RST and SYN in every state: RFC 9293 §3.10.7, RFC 5961 §3-§4, §7, ABORT §3.10.5."""

from __future__ import annotations

import errno

import pytest

from aiotcp.core.connection import Connection, reset_for
from aiotcp.core.events import CloseReason, ConnectionClosed, ConnectionReset
from aiotcp.core.segment import ACK, FIN, RST, SYN, Segment
from aiotcp.core.state import State
from aiotcp.testing.corekit import (
    STATE_FIXTURES,
    L,
    R,
    closed,
    established,
    opts,
    syn_sent,
)

RESETTABLE = [
    State.ESTABLISHED,
    State.FIN_WAIT_1,
    State.FIN_WAIT_2,
    State.CLOSE_WAIT,
    State.CLOSING,
    State.LAST_ACK,
]
SYNCHRONIZED = [*RESETTABLE, State.TIME_WAIT]


def _rcv_nxt_state(state: State) -> int:
    return {State.CLOSE_WAIT: R(2), State.CLOSING: R(2), State.LAST_ACK: R(2)}.get(state, R(1))


@pytest.mark.parametrize("state", RESETTABLE, ids=lambda s: s.name)
def test_exact_rst_closes(state: State) -> None:
    t = STATE_FIXTURES[state]()
    t.recv("R", seq=t.conn.rcv_nxt)
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.RESET
    assert ConnectionReset in t.event_types()
    t.expect_nothing()


@pytest.mark.parametrize("state", RESETTABLE, ids=lambda s: s.name)
def test_in_window_inexact_rst_gets_challenge_ack(state: State) -> None:
    """RFC 5961 §3.2: a blind in-window RST only earns a challenge ACK."""
    t = STATE_FIXTURES[state]()
    t.recv("R", seq=seq_plus(t.conn.rcv_nxt, 100))
    assert t.state is state
    t.expect("A", ack=t.conn.rcv_nxt)
    assert t.conn.counters.challenge_acks == 1


@pytest.mark.parametrize("state", SYNCHRONIZED, ids=lambda s: s.name)
def test_out_of_window_rst_is_silently_dropped(state: State) -> None:
    t = STATE_FIXTURES[state]()
    t.recv("R", seq=seq_plus(t.conn.rcv_nxt, 10_000_000))
    assert t.state is state
    t.expect_nothing()


@pytest.mark.parametrize("state", SYNCHRONIZED, ids=lambda s: s.name)
def test_syn_in_synchronized_state_gets_challenge_ack(state: State) -> None:
    """RFC 5961 §4.2: any SYN in a synchronized state: challenge ACK, drop."""
    t = STATE_FIXTURES[state]()
    t.recv("S", seq=seq_plus(t.conn.rcv_nxt, 5))
    assert t.state is state
    t.expect("A", ack=t.conn.rcv_nxt)


def test_rst_with_ack_flag_in_established_closes() -> None:
    t = established()
    t.recv("RA", ack=L(1))
    assert t.state is State.CLOSED


def test_rst_keeps_in_order_data_readable_and_drops_what_lies_beyond_a_hole() -> None:
    """Linux delivers what arrived before a reset (a read returns it, the next read
    fails); bytes beyond a hole can never become readable."""
    t = established()
    t.recv("PA", payload=b"-ERR go away\r\n")
    t.recv("PA", seq=R(30), payload=b"after a hole", advance_peer=False)
    t.recv("R")
    assert t.state is State.CLOSED
    assert t.conn.readable_bytes == 14 and not t.conn.recv_buffer.has_out_of_order
    assert t.conn.read() == b"-ERR go away\r\n"
    with pytest.raises(ConnectionResetError) as raised:
        t.send(b"x")
    assert raised.value.errno == errno.ECONNRESET


def test_challenge_acks_are_rate_limited() -> None:
    """RFC 5961 §7."""
    t = established(opts(challenge_ack_limit=2))
    for i in range(5):
        t.recv("R", seq=R(100 + i))
        t.output()
    assert t.conn.counters.challenge_acks == 2
    t.advance(1.0)
    t.recv("R", seq=R(200))
    t.expect("A")


def test_rst_in_last_ack_closes() -> None:
    t = STATE_FIXTURES[State.LAST_ACK]()
    t.recv("R", seq=R(2))
    assert t.state is State.CLOSED


# -- CLOSED ----------------------------------------------------------------------


def test_closed_answers_ack_with_rst_from_ack_field() -> None:
    """RFC 9293 §3.10.7.1: <SEQ=SEG.ACK><CTL=RST>."""
    t = closed()
    t.recv("A", seq=500, ack=900)
    t.expect("R", seq=900, ack=0)


def test_closed_answers_non_ack_with_rst_ack() -> None:
    """RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>."""
    t = closed()
    t.recv("S", seq=500)
    t.expect("RA", seq=0, ack=501)


def test_closed_counts_fin_and_data_in_reset_ack() -> None:
    t = closed()
    t.recv("F", seq=100, payload=b"abc")
    t.expect("RA", ack=104)


def test_closed_never_answers_rst() -> None:
    t = closed()
    t.recv("R", seq=1)
    t.recv("RA", seq=1, ack=2)
    t.expect_nothing()


def test_reset_for_helper_matches_rfc() -> None:
    assert reset_for(Segment(1, 2, 10, 0, RST)) is None
    rst = reset_for(Segment(1, 2, 10, 77, ACK))
    assert rst is not None and (rst.seq, rst.flags, rst.src_port, rst.dst_port) == (77, RST, 2, 1)
    rst = reset_for(Segment(1, 2, 0xFFFFFFFF, 0, SYN | FIN))
    assert rst is not None and rst.ack == 1 and rst.flags == RST | ACK


# -- ABORT -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "state",
    [State.SYN_RECEIVED, State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSE_WAIT],
    ids=lambda s: s.name,
)
def test_abort_sends_rst(state: State) -> None:
    t = STATE_FIXTURES[state]()
    t.conn.abort()
    t.expect("RA", ack=t.conn.rcv_nxt)  # RFC 9293 §3.10.5, with Linux's ACK
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.ABORTED
    assert ConnectionClosed in t.event_types()
    assert ConnectionClosed(CloseReason.ABORTED) in t.events


@pytest.mark.parametrize(
    "state", [State.SYN_SENT, State.LISTEN, State.CLOSING, State.LAST_ACK, State.TIME_WAIT]
)
def test_abort_without_rst(state: State) -> None:
    t = STATE_FIXTURES[state]()
    t.conn.abort()
    t.expect_nothing()
    assert t.state is State.CLOSED


def test_abort_rst_carries_snd_nxt() -> None:
    t = established()
    t.send(b"12345")
    t.expect("PA")
    t.conn.abort()
    t.expect("RA", seq=L(6))


def test_abort_in_syn_sent_reports_abort() -> None:
    t = syn_sent()
    t.conn.abort()
    assert t.conn.close_reason is CloseReason.ABORTED
    assert isinstance(CloseReason.ABORTED.exception(), ConnectionAbortedError)


def test_closed_connection_has_no_deadline() -> None:
    t = established()
    t.recv("R")
    assert t.conn.next_deadline() is None
    assert isinstance(t.conn, Connection)


def seq_plus(a: int, n: int) -> int:
    return (a + n) % 2**32


@pytest.mark.parametrize("state", SYNCHRONIZED, ids=lambda s: s.name)
def test_an_old_syn_gets_a_plain_challenge_ack(state: State) -> None:
    """RFC 5961 §4.2: a SYN in a synchronized state, whatever its sequence number,
    gets a challenge ACK of RCV.NXT.  The peer's old SYN (at its ISN, below RCV.NXT)
    is not duplicate data: no D-SACK block (RFC 2883 §4) rides on the ACK."""
    t = STATE_FIXTURES[state]()
    t.conn.sack_ok = True
    t.recv("S", seq=R(0), advance_peer=False)
    t.expect("A", ack=t.conn.rcv_nxt, sack_blocks=())
    assert t.state is state
