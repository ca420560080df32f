"""Events and the info snapshot: what the asyncio layer sees."""

from __future__ import annotations

from aiotcp.core.events import (
    CloseReason,
    Connected,
    ConnectionClosed,
    ConnectionReset,
    DataReceived,
    EofReceived,
    StateChanged,
)
from aiotcp.core.state import State
from aiotcp.testing.corekit import L, closed, established, last_ack, opts, syn_sent


def test_active_open_events_in_order() -> None:
    t = closed()
    t.conn.connect(t.now)
    t.output()
    t.recv("SA", ack=L(1))
    assert t.events == [
        StateChanged(State.CLOSED, State.SYN_SENT),
        StateChanged(State.SYN_SENT, State.ESTABLISHED),
        Connected(),
    ]


def test_data_then_eof_events() -> None:
    t = established()
    t.recv("PA", payload=b"abc")
    t.recv("FA")
    assert t.events == [
        DataReceived(3),
        EofReceived(),
        StateChanged(State.ESTABLISHED, State.CLOSE_WAIT),
    ]


def test_reset_events() -> None:
    t = established()
    t.recv("R")
    assert t.events[-3:] == [
        StateChanged(State.ESTABLISHED, State.CLOSED),
        ConnectionReset(),
        ConnectionClosed(CloseReason.RESET),
    ]


def test_normal_close_event() -> None:
    t = last_ack()
    t.recv("A", ack=L(2))
    assert t.events[-1] == ConnectionClosed(CloseReason.NORMAL)


def test_next_event_drains_queue() -> None:
    t = syn_sent()
    t.recv("SA", ack=L(1))
    assert t.conn.next_event() is None  # the harness already drained it


def test_info_snapshot_fields() -> None:
    t = established(opts(timestamps=True), ts_val=1, ts_ecr=1)
    t.send(b"hello")
    t.output()
    info = t.conn.info(t.now)
    d = info.as_dict()
    for key in (
        "state", "local", "remote", "snd_una", "snd_nxt", "snd_wnd", "rcv_nxt", "rcv_wnd",
        "srtt", "rttvar", "rto", "cwnd", "ssthresh", "send_queue", "recv_queue", "timers",
        "counters",
    ):  # fmt: skip
        assert key in d
    assert d["send_queue"] == 5 and d["options"]["timestamps"] is True
    assert d["counters"]["segments_out"] >= 2


def test_counters_track_segments_and_bytes() -> None:
    t = established()
    t.recv("PA", payload=b"1234")
    t.output()
    c = t.conn.counters
    assert c.bytes_in == 4 and c.segments_in == 2


def test_data_events_of_a_batch_coalesce() -> None:
    """A driver that feeds a batch before draining events sees one DataReceived."""
    from aiotcp.core.segment import ACK, Segment
    from aiotcp.testing.corekit import LOCAL, REMOTE, R

    t = established()
    for i, data in enumerate((b"ab", b"cd", b"ef")):
        t.conn.receive(Segment(REMOTE[1], LOCAL[1], R(1 + 2 * i), L(1), ACK, 5000, 0, data), 0.0)
    assert t.conn.next_event() == DataReceived(6)
    assert t.conn.next_event() is None


def test_transition_table_is_rfc9293_figure_5() -> None:
    from aiotcp.core.state import TRANSITIONS

    assert len(TRANSITIONS) == 14 + 10
    assert (State.TIME_WAIT, State.ESTABLISHED) not in TRANSITIONS
    assert all((s, State.CLOSED) in TRANSITIONS for s in State if s is not State.CLOSED)


def test_every_transition_in_the_table_is_reachable() -> None:
    """Short scripts from CLOSED; together they must walk every edge of the table
    (FIN-WAIT-1 -> TIME-WAIT happens as FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT within
    one segment, as in Linux, so it is the one edge not walked directly)."""
    from aiotcp.core.state import TRANSITIONS
    from aiotcp.testing.corekit import Harness, R, listen

    seen: set[tuple[State, State]] = set()

    def walk(t: Harness) -> None:
        t.event_types()
        seen.update((e.old, e.new) for e in t.events if isinstance(e, StateChanged))

    def opened() -> Harness:
        t = closed()
        t.conn.connect(t.now)
        t.output()
        t.recv("SA", ack=L(1))
        return t

    t = closed()
    t.conn.connect(t.now)
    t.conn.abort()
    walk(t)
    t = listen()
    t.recv("S")
    t.output()
    t.recv("A", ack=L(1))
    walk(t)
    t = closed()
    t.conn.listen()
    t.conn.abort()
    walk(t)
    t = closed()
    t.conn.connect(t.now)
    t.output()
    t.recv("S")
    t.conn.abort()
    walk(t)
    t = opened()
    t.conn.close(t.now)
    t.output()
    t.recv("FA", ack=L(1))
    t.recv("A", ack=L(2))
    t.advance(61)
    walk(t)
    t = opened()
    t.conn.close(t.now)
    t.output()
    t.recv("A", ack=L(2))
    t.recv("FA", ack=L(2))
    walk(t)
    t = opened()
    t.recv("FA")
    t.conn.close(t.now)
    t.output()
    t.recv("A", ack=L(2))
    walk(t)
    for make in [opened]:
        for finish in ("fw1", "fw2", "closing", "close_wait", "last_ack", "time_wait"):
            t = make()
            if finish != "close_wait" and finish != "last_ack":
                t.conn.close(t.now)
                t.output()
            if finish == "fw2":
                t.recv("A", ack=L(2))
            if finish == "closing":
                t.recv("FA", ack=L(1))
            if finish == "time_wait":
                t.recv("A", ack=L(2))
                t.recv("FA", ack=L(2))
                t.conn.abort()
                t.recv("R", seq=R(2))
                t.advance(61)
            if finish in ("close_wait", "last_ack"):
                t.recv("FA")
                if finish == "last_ack":
                    t.conn.close(t.now)
            t.recv("R", seq=t.conn.rcv_nxt)
            walk(t)
    t = opened()
    t.recv("R", seq=R(1))
    walk(t)
    missing = {(a.name, b.name) for a, b in TRANSITIONS - seen}
    assert missing == {("FIN_WAIT_1", "TIME_WAIT")}
