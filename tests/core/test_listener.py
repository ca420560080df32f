"""LISTEN endpoint: SYN queue, accept queue, overflow policy, SYN cookies."""

from __future__ import annotations

import ipaddress

import pytest

from aiotcp.core.connection import Connection
from aiotcp.core.listener import COOKIE_MSS_TABLE, Listener
from aiotcp.core.segment import ACK, RST, SYN, Segment
from aiotcp.core.seq import seq_add
from aiotcp.core.state import State
from aiotcp.testing.corekit import LOCAL_IP, REMOTE, REMOTE_IP, SECRET, opts

PORT = REMOTE[1]
ANY = bytes(4)
LOCAL6 = ipaddress.IPv6Address("fd00:198:18::1").packed
REMOTE6 = ipaddress.IPv6Address("fd00:198:18::2").packed


def make_listener(**changes: object) -> Listener:
    return Listener((ANY, PORT), opts(**changes), SECRET, 0.0)


def syn_from(port: int, seq: int = 1000, **options: object) -> Segment:
    return Segment(port, PORT, seq, 0, SYN, 65535, **options)  # type: ignore[arg-type]


def handshake_ack(conn: Connection, port: int, seq: int = 1000) -> Segment:
    return Segment(port, PORT, seq + 1, seq_add(conn.iss, 1), ACK, 65535)


def open_half(listener: Listener, port: int, now: float = 0.0) -> Connection:
    """A half-open connection whose SYN-ACK has gone out (as the stack would send it)."""
    conn = listener.receive(syn_from(port), LOCAL_IP, REMOTE_IP, now)
    assert conn is not None
    conn.segments_to_send(now)
    return conn


def test_syn_creates_half_open_connection_in_syn_queue() -> None:
    lst = make_listener()
    conn = lst.receive(syn_from(40000), LOCAL_IP, REMOTE_IP, 0.0)
    assert conn is not None and conn.state is State.SYN_RECEIVED
    assert conn.local == (REMOTE_IP, PORT) and conn.remote == (LOCAL_IP, 40000)
    assert lst.syn_queue_length == 1 and lst.accept_queue_length == 0
    [synack] = conn.segments_to_send(0.0)
    assert synack.flags == SYN | ACK and synack.ack == 1001
    assert lst.half_open() == [conn]


def test_completed_handshake_moves_to_accept_queue() -> None:
    lst = make_listener()
    conn = open_half(lst, 40000)
    conn.segments_to_send(0.0)
    conn.receive(handshake_ack(conn, 40000), 0.1)
    assert conn.state is State.ESTABLISHED
    assert (lst.syn_queue_length, lst.accept_queue_length) == (0, 1)
    assert lst.accept() is conn
    assert lst.accept() is None


def test_accept_returns_connections_in_order() -> None:
    lst = make_listener()
    conns = [open_half(lst, 40000 + i) for i in range(3)]
    for i, conn in reversed(list(enumerate(conns))):
        conn.receive(handshake_ack(conn, 40000 + i), 0.1)
    assert [lst.accept() for _ in range(3)] == list(reversed(conns))


def test_half_open_reset_leaves_syn_queue() -> None:
    lst = make_listener()
    conn = open_half(lst, 40000)
    conn.receive(Segment(40000, PORT, 1001, 0, RST), 0.1)
    assert conn.state is State.CLOSED
    assert lst.syn_queue_length == 0


def test_half_open_timeout_leaves_syn_queue() -> None:
    lst = make_listener(synack_retries=1)
    conn = open_half(lst, 40000)
    conn.segments_to_send(0.0)
    conn.handle_timer(1.0)
    conn.handle_timer(3.0)
    assert conn.state is State.CLOSED
    assert lst.syn_queue_length == 0


def test_segments_for_queued_child_are_forwarded() -> None:
    lst = make_listener()
    conn = open_half(lst, 40000)
    conn.segments_to_send(0.0)
    assert lst.receive(handshake_ack(conn, 40000), LOCAL_IP, REMOTE_IP, 0.1) is None
    assert conn.state is State.ESTABLISHED


def test_ack_without_connection_is_reset() -> None:
    lst = make_listener(syn_cookies=False)
    seg = Segment(40000, PORT, 5, 777, ACK, 100)
    assert lst.receive(seg, LOCAL_IP, REMOTE_IP, 0.0) is None
    [(rst, src, dst)] = lst.segments_to_send(0.0)
    assert (rst.flags, rst.seq, src, dst) == (RST, 777, REMOTE_IP, LOCAL_IP)


def test_rst_to_listener_ignored() -> None:
    lst = make_listener()
    assert lst.receive(Segment(40000, PORT, 5, 0, RST), LOCAL_IP, REMOTE_IP, 0.0) is None
    assert lst.segments_to_send(0.0) == []


def test_syn_queue_overflow_drops_without_cookies() -> None:
    lst = make_listener(backlog=2, syn_cookies=False)
    open_half(lst, 40000)
    open_half(lst, 40001)
    assert lst.receive(syn_from(40002), LOCAL_IP, REMOTE_IP, 0.0) is None
    assert lst.segments_to_send(0.0) == []
    assert lst.counters.syn_queue_overflows == 1


def test_accept_queue_full_drops_new_syns() -> None:
    lst = make_listener(backlog=1)
    conn = open_half(lst, 40000)
    conn.receive(handshake_ack(conn, 40000), 0.1)
    assert lst.receive(syn_from(40001), LOCAL_IP, REMOTE_IP, 0.2) is None
    assert lst.counters.accept_queue_overflows == 1


def test_accept_queue_overflow_drops_final_ack_by_default() -> None:
    lst = make_listener(backlog=1)
    a = open_half(lst, 40000)
    b_conn = Connection(
        (REMOTE_IP, PORT), (LOCAL_IP, 40001), lst.options, SECRET, 0.0, accept_queue=lst
    )
    b_conn.listen()
    b_conn.receive(syn_from(40001), 0.0)
    a.receive(handshake_ack(a, 40000), 0.1)  # fills the accept queue
    b_conn.segments_to_send(0.0)
    b_conn.receive(handshake_ack(b_conn, 40001), 0.1)
    assert b_conn.state is State.SYN_RECEIVED  # ACK dropped, SYN-ACK will be resent
    assert b_conn.segments_to_send(0.1) == []


def test_accept_queue_overflow_resets_with_abort_on_overflow() -> None:
    lst = make_listener(backlog=1, abort_on_overflow=True)
    a = open_half(lst, 40000)
    b_conn = Connection(
        (REMOTE_IP, PORT), (LOCAL_IP, 40001), lst.options, SECRET, 0.0, accept_queue=lst
    )
    b_conn.listen()
    b_conn.receive(syn_from(40001), 0.0)
    a.receive(handshake_ack(a, 40000), 0.1)
    b_conn.segments_to_send(0.0)
    b_conn.receive(handshake_ack(b_conn, 40001), 0.1)
    assert b_conn.state is State.CLOSED
    [rst] = b_conn.segments_to_send(0.1)
    assert rst.flags == RST


def test_listener_close_aborts_queued_connections() -> None:
    lst = make_listener()
    conn = open_half(lst, 40000)
    victims = lst.close()
    assert victims == [conn] and conn.state is State.CLOSED
    assert lst.receive(syn_from(40001), LOCAL_IP, REMOTE_IP, 0.0) is None


# -- SYN cookies ---------------------------------------------------------------------


def _flooded(**changes: object) -> Listener:
    lst = make_listener(backlog=1, **changes)
    open_half(lst, 39999)
    return lst


def test_full_syn_queue_answers_with_cookie() -> None:
    lst = _flooded()
    assert lst.receive(syn_from(40000, mss=1460), LOCAL_IP, REMOTE_IP, 0.0) is None
    [(synack, src, dst)] = lst.segments_to_send(0.0)
    assert synack.flags == SYN | ACK and synack.ack == 1001
    assert (src, dst) == (REMOTE_IP, LOCAL_IP)
    assert synack.wscale is None and synack.ts_val is None and not synack.sack_permitted
    assert lst.syn_queue_length == 1  # no state kept
    assert lst.counters.cookies_sent == 1


def test_valid_cookie_ack_creates_established_connection() -> None:
    lst = _flooded()
    lst.receive(syn_from(40000, mss=1400), LOCAL_IP, REMOTE_IP, 0.0)
    [(synack, _, _)] = lst.segments_to_send(0.0)
    ack = Segment(40000, PORT, 1001, seq_add(synack.seq, 1), ACK, 5000, 0, b"hi")
    conn = lst.receive(ack, LOCAL_IP, REMOTE_IP, 1.0)
    assert conn is not None and conn.state is State.ESTABLISHED
    assert conn.peer_mss == 1400  # encoded in the cookie
    assert conn.read() == b"hi"
    assert lst.accept() is conn
    assert lst.counters.cookies_accepted == 1


@pytest.mark.parametrize(
    ("client", "server", "advertised", "default"),
    [(LOCAL_IP, REMOTE_IP, 1460, 536), (LOCAL6, REMOTE6, 1440, 1200)],
    ids=["ipv4", "ipv6"],
)
def test_cookie_takes_the_mss_of_the_family(
    client: bytes, server: bytes, advertised: int, default: int
) -> None:
    """A cookie's SYN-ACK offers the route MTU less the family's headers, and a SYN
    without an MSS option means 536 over IPv4, 1220 over IPv6 (MUST-15; the table
    rounds it down to 1200)."""
    lst = Listener((bytes(len(server)), PORT), opts(backlog=1, mtu=1500), SECRET, 0.0)
    assert lst.receive(syn_from(39999), client, server, 0.0) is not None  # fills the queue
    lst.segments_to_send(0.0)
    assert lst.receive(syn_from(40000), client, server, 0.0) is None
    [(synack, _, _)] = [out for out in lst.segments_to_send(0.0) if out[0].seq != 0]
    assert synack.mss == advertised
    ack = Segment(40000, PORT, 1001, seq_add(synack.seq, 1), ACK, 5000)
    conn = lst.receive(ack, client, server, 0.0)
    assert conn is not None and conn.peer_mss == default


def test_cookie_mss_rounds_down_to_table() -> None:
    lst = make_listener()
    cookie = lst.make_cookie((REMOTE_IP, PORT), (LOCAL_IP, 1), 5, 1450, 0.0)
    assert lst.check_cookie((REMOTE_IP, PORT), (LOCAL_IP, 1), 5, cookie, 0.0) == 1440
    assert 1440 in COOKIE_MSS_TABLE


def test_forged_cookie_ack_is_reset() -> None:
    lst = _flooded()
    ack = Segment(40000, PORT, 1001, 0x12345678, ACK, 5000)
    assert lst.receive(ack, LOCAL_IP, REMOTE_IP, 1.0) is None
    [(rst, _, _)] = lst.segments_to_send(1.0)
    assert rst.flags == RST and rst.seq == 0x12345678
    assert lst.counters.cookies_rejected == 1


def test_cookie_bound_to_client_isn_and_tuple() -> None:
    lst = make_listener()
    cookie = lst.make_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40000), 1000, 1460, 0.0)
    assert lst.check_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40000), 1000, cookie, 0.0)
    assert lst.check_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40001), 1000, cookie, 0.0) is None
    assert lst.check_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40000), 1001, cookie, 0.0) is None


def test_expired_cookie_rejected() -> None:
    lst = make_listener()
    cookie = lst.make_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40000), 1000, 1460, 0.0)
    assert lst.check_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40000), 1000, cookie, 130.0)
    assert lst.check_cookie((REMOTE_IP, PORT), (LOCAL_IP, 40000), 1000, cookie, 200.0) is None


def test_syn_flood_survives_with_cookies() -> None:
    """Thousands of spoofed SYNs: queue stays bounded, a real client still connects."""
    lst = make_listener(backlog=8)
    for i in range(2000):
        lst.receive(syn_from(10000 + i, seq=i), LOCAL_IP, REMOTE_IP, 0.0)
    assert lst.syn_queue_length == 8
    assert lst.counters.cookies_sent == 2000 - 8
    lst.segments_to_send(0.0)
    lst.receive(syn_from(50000, seq=7, mss=1460), LOCAL_IP, REMOTE_IP, 0.5)
    [(synack, _, _)] = lst.segments_to_send(0.5)
    ack = Segment(50000, PORT, 8, seq_add(synack.seq, 1), ACK, 5000)
    conn = lst.receive(ack, LOCAL_IP, REMOTE_IP, 0.6)
    assert conn is not None and conn.state is State.ESTABLISHED


def test_cookies_disabled_ack_gets_reset() -> None:
    lst = make_listener(syn_cookies=False)
    lst.receive(Segment(40000, PORT, 1, 99, ACK, 5), LOCAL_IP, REMOTE_IP, 0.0)
    [(rst, _, _)] = lst.segments_to_send(0.0)
    assert rst.flags == RST


def test_listener_info_reports_queues() -> None:
    lst = make_listener(backlog=4)
    open_half(lst, 40000)
    info = lst.info()
    assert info["syn_queue"] == 1 and info["accept_queue"] == 0 and info["backlog"] == 4


def test_valid_cookie_ack_with_full_accept_queue_is_dropped_not_reset() -> None:
    """Linux drops the final ACK when it cannot accept (the client retransmits);
    a RST would kill a connection the client already considers established."""
    from aiotcp.core.listener import Listener
    from aiotcp.core.options import TcpOptions
    from aiotcp.core.segment import ACK, Segment

    local, peer = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    for abort, expect_rst in ((False, False), (True, True)):
        lst = Listener((local, 80), TcpOptions(backlog=1, abort_on_overflow=abort), b"k" * 16)
        lst._accept_queue.append(object())  # type: ignore[arg-type]  # the queue is full
        cookie = lst.make_cookie((local, 80), (peer, 4000), 999, 1460, 0.0)
        seg = Segment(4000, 80, 1000, (cookie + 1) & 0xFFFFFFFF, ACK, 500)
        assert lst.receive(seg, peer, local, 0.0) is None
        out = lst.segments_to_send(0.0)
        assert bool(out) is expect_rst
        assert lst.counters.accept_queue_overflows == 1


def test_cookie_with_timestamps_keeps_window_scale_and_sack() -> None:
    """Linux-style: options ride in the low bits of the SYN-ACK's TSval."""
    lst = _flooded(window_scaling=True, sack=True, timestamps=True, recv_buffer=1 << 20)
    syn = syn_from(40000, mss=1460, wscale=7, sack_permitted=True, ts_val=5555, ts_ecr=0)
    lst.receive(syn, LOCAL_IP, REMOTE_IP, 10.0)
    [(synack, _, _)] = lst.segments_to_send(10.0)
    assert synack.wscale == 5 and synack.sack_permitted and synack.ts_ecr == 5555
    assert synack.ts_val is not None
    ack = Segment(
        40000, PORT, 1001, seq_add(synack.seq, 1), ACK, 100, ts_val=5556, ts_ecr=synack.ts_val
    )
    conn = lst.receive(ack, LOCAL_IP, REMOTE_IP, 10.1)
    assert conn is not None and conn.state is State.ESTABLISHED
    assert (conn.snd_wscale, conn.rcv_wscale) == (7, 5)
    assert conn.sack_ok and conn.ts_ok
    assert conn.snd_wnd == 100 << 7


def test_cookie_without_timestamps_has_no_other_options() -> None:
    lst = _flooded(window_scaling=True, sack=True, timestamps=True)
    lst.receive(syn_from(40000, mss=1460, wscale=7, sack_permitted=True), LOCAL_IP, REMOTE_IP, 0.0)
    [(synack, _, _)] = lst.segments_to_send(0.0)
    assert synack.wscale is None and not synack.sack_permitted and synack.ts_val is None
    conn = lst.receive(
        Segment(40000, PORT, 1001, seq_add(synack.seq, 1), ACK, 100), LOCAL_IP, REMOTE_IP, 0.1
    )
    assert conn is not None and (conn.snd_wscale, conn.rcv_wscale) == (0, 0)
    assert not conn.sack_ok and not conn.ts_ok


def test_cookie_timestamp_is_not_ahead_of_the_connection_clock() -> None:
    """PAWS at the peer: later TSvals of the connection must not be older."""
    lst = _flooded(timestamps=True)
    lst.receive(syn_from(40000, ts_val=1, ts_ecr=0), LOCAL_IP, REMOTE_IP, 3.0)
    [(synack, _, _)] = lst.segments_to_send(3.0)
    ack = Segment(
        40000, PORT, 1001, seq_add(synack.seq, 1), ACK, 100, ts_val=2, ts_ecr=synack.ts_val
    )
    conn = lst.receive(ack, LOCAL_IP, REMOTE_IP, 3.0)
    assert conn is not None
    conn.send(b"x")
    [data] = conn.segments_to_send(3.0)
    assert data.ts_val is not None and synack.ts_val is not None
    assert (data.ts_val - synack.ts_val) % 2**32 < 2**31


def test_syn_fin_to_listener_is_dropped() -> None:
    from aiotcp.core.segment import FIN

    lst = make_listener()
    seg = Segment(40000, PORT, 1, 0, SYN | FIN, 1000)
    assert lst.receive(seg, LOCAL_IP, REMOTE_IP, 0.0) is None
    assert lst.syn_queue_length == 0 and lst.segments_to_send(0.0) == []
