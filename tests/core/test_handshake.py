"""Opening a connection: RFC 9293 §3.5, §3.10.7.2 (LISTEN), §3.10.7.3 (SYN-SENT)."""

from __future__ import annotations

import ipaddress

import pytest

from aiotcp.core.connection import Connection
from aiotcp.core.events import CloseReason, Connected, ConnectionClosed, ConnectionReset
from aiotcp.core.isn import initial_sequence_number
from aiotcp.core.options import TcpOptions
from aiotcp.core.state import State
from aiotcp.testing.corekit import (
    LOCAL,
    LOCAL_ISS,
    REMOTE,
    REMOTE_ISS,
    SECRET,
    Harness,
    L,
    R,
    closed,
    established,
    listen,
    opts,
    syn_received,
    syn_sent,
)

LOCAL6 = (ipaddress.IPv6Address("fd00:198:18::1").packed, LOCAL[1])
REMOTE6 = (ipaddress.IPv6Address("fd00:198:18::2").packed, REMOTE[1])


def _closed(family: int, options: TcpOptions) -> Harness:
    """A closed connection over IPv4 (``closed``'s addresses) or IPv6."""
    local, remote = (LOCAL, REMOTE) if family == 4 else (LOCAL6, REMOTE6)
    return Harness(Connection(local, remote, options, SECRET, 0.0, iss=LOCAL_ISS))


# -- active open -------------------------------------------------------------------


def test_connect_sends_syn_and_enters_syn_sent() -> None:
    t = closed()
    t.conn.connect(t.now)
    assert t.state is State.SYN_SENT
    t.expect("S", seq=LOCAL_ISS, ack=0, mss=1460, sack_permitted=True)
    t.expect_nothing()


def test_syn_offers_window_scale_and_timestamps_when_enabled() -> None:
    t = closed(opts(window_scaling=True, timestamps=True, recv_buffer=1 << 20))
    t.conn.connect(t.now)
    syn = t.expect("S")
    assert syn.wscale == 5  # 1 MiB >> 5 fits 16 bits
    assert syn.ts_val is not None and syn.ts_ecr == 0
    assert syn.window == 0xFFFF  # RFC 7323 §2.2: a SYN's window is never scaled


def test_syn_mss_clipped_to_route_mtu() -> None:
    t = closed(opts(mtu=1280))
    t.conn.connect(t.now)
    t.expect("S", mss=1240)


@pytest.mark.parametrize(("family", "mss"), [(4, 1460), (6, 1440)], ids=["ipv4", "ipv6"])
def test_syn_mss_is_the_route_mtu_less_the_familys_headers(family: int, mss: int) -> None:
    """IPv6's header is 40 bytes, not 20: a 1500-byte MTU carries 1440 bytes of TCP
    payload, and a larger MSS would have the peer send packets the link cannot take."""
    t = _closed(family, opts(mtu=1500))
    t.conn.connect(t.now)
    t.expect("S", mss=mss)


def test_connect_twice_is_an_error() -> None:
    t = syn_sent()
    try:
        t.conn.connect(t.now)
    except ConnectionError:
        return
    raise AssertionError("second connect() must raise")


def test_syn_ack_establishes_and_acks() -> None:
    t = syn_sent()
    t.recv("SA", ack=L(1), mss=1460)
    assert t.state is State.ESTABLISHED
    t.expect("A", seq=L(1), ack=R(1))
    assert Connected in t.event_types()
    assert t.conn.snd_una == L(1) and t.conn.rcv_nxt == R(1)


def test_syn_ack_window_sets_snd_wnd_unscaled() -> None:
    t = syn_sent(opts(window_scaling=True))
    t.recv("SA", ack=L(1), window=1000, wscale=7)
    assert t.conn.snd_wnd == 1000
    t.recv("A", ack=L(1), window=1000)
    assert t.conn.snd_wnd == 1000 << 7


def test_syn_ack_with_ack_below_iss_gets_reset() -> None:
    """RFC 9293 §3.10.7.3: SEG.ACK =< ISS is unacceptable: <SEQ=SEG.ACK><CTL=RST>."""
    t = syn_sent()
    t.recv("SA", ack=L(0))
    t.expect("R", seq=L(0))
    assert t.state is State.SYN_SENT


def test_syn_ack_acking_unsent_data_gets_reset() -> None:
    t = syn_sent()
    t.recv("SA", ack=L(5))
    t.expect("R", seq=L(5))
    assert t.state is State.SYN_SENT


def test_rst_with_acceptable_ack_in_syn_sent_is_connection_refused() -> None:
    t = syn_sent()
    t.recv("RA", seq=0, ack=L(1))
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.REFUSED
    assert isinstance(CloseReason.REFUSED.exception(), ConnectionRefusedError)
    assert t.event_types()[-2:] == [ConnectionReset, ConnectionClosed]
    t.expect_nothing()


def test_rst_without_ack_in_syn_sent_is_ignored() -> None:
    t = syn_sent()
    t.recv("R", seq=R(0))
    assert t.state is State.SYN_SENT
    t.expect_nothing()


def test_rst_with_bad_ack_in_syn_sent_is_ignored_and_not_answered() -> None:
    t = syn_sent()
    t.recv("RA", ack=L(9))
    assert t.state is State.SYN_SENT
    t.expect_nothing()


def test_segment_without_syn_or_rst_in_syn_sent_is_dropped() -> None:
    t = syn_sent()
    t.recv("", payload=b"x")
    t.recv("A", ack=L(1))
    assert t.state is State.SYN_SENT
    t.expect_nothing()


def test_simultaneous_open_via_syn_received() -> None:
    """RFC 9293 §3.5 figure 8."""
    t = syn_sent()
    t.recv("S")
    assert t.state is State.SYN_RECEIVED
    t.expect("SA", seq=L(0), ack=R(1))
    t.recv("SA", seq=R(0), ack=L(1), advance_peer=False)
    assert t.state is State.ESTABLISHED
    assert Connected in t.event_types()


def test_simultaneous_open_completed_by_plain_ack() -> None:
    t = syn_sent()
    t.recv("S")
    t.expect("SA")
    t.recv("A", ack=L(1))
    assert t.state is State.ESTABLISHED


def test_syn_ack_carrying_data_delivers_it() -> None:
    t = syn_sent()
    t.recv("SA", ack=L(1), payload=b"early")
    assert t.state is State.ESTABLISHED
    assert t.read() == b"early"
    t.expect("A", ack=R(6))


def test_data_queued_in_syn_sent_goes_after_handshake() -> None:
    t = syn_sent()
    assert t.send(b"queued") == 6
    t.expect_nothing()
    t.recv("SA", ack=L(1))
    t.expect("PA", seq=L(1), ack=R(1), payload=b"queued")


# -- passive open ------------------------------------------------------------------


def test_listen_answers_syn_with_syn_ack() -> None:
    t = listen()
    t.recv("S", mss=1400)
    assert t.state is State.SYN_RECEIVED
    t.expect("SA", seq=LOCAL_ISS, ack=R(1), mss=1460)
    assert t.conn.peer_mss == 1400


def test_listen_ignores_rst() -> None:
    t = listen()
    t.recv("R")
    assert t.state is State.LISTEN
    t.expect_nothing()


def test_listen_answers_ack_with_reset() -> None:
    t = listen()
    t.recv("A", ack=12345)
    t.expect("R", seq=12345)
    assert t.state is State.LISTEN


def test_listen_drops_segment_without_syn() -> None:
    t = listen()
    t.recv("F")
    t.recv("", payload=b"x")
    t.expect_nothing()
    assert t.state is State.LISTEN


def test_syn_received_ack_establishes() -> None:
    t = syn_received()
    t.recv("A", ack=L(1))
    assert t.state is State.ESTABLISHED
    assert Connected in t.event_types()
    t.expect_nothing()


def test_syn_received_unacceptable_ack_gets_reset() -> None:
    t = syn_received()
    t.recv("A", ack=L(7))
    t.expect("R", seq=L(7))
    assert t.state is State.SYN_RECEIVED


def test_syn_received_ack_without_ack_flag_dropped() -> None:
    t = syn_received()
    t.recv("", payload=b"x")
    assert t.state is State.SYN_RECEIVED
    t.expect_nothing()


def test_syn_received_final_ack_with_data() -> None:
    t = syn_received()
    t.recv("PA", ack=L(1), payload=b"GET /")
    assert t.state is State.ESTABLISHED
    assert t.read() == b"GET /"
    t.expect("A", ack=R(6))


def test_syn_received_duplicate_syn_resends_syn_ack() -> None:
    t = syn_received()
    t.recv("S", seq=R(0), advance_peer=False)
    t.expect("SA", seq=LOCAL_ISS, ack=R(1))


def test_syn_received_fin_with_handshake_ack_goes_to_close_wait() -> None:
    t = syn_received()
    t.recv("FA", ack=L(1))
    assert t.state is State.CLOSE_WAIT
    t.expect("A", ack=R(2))


def test_syn_ack_offers_only_what_peer_offered() -> None:
    t = syn_received(opts(window_scaling=True, timestamps=True, sack=True))
    # The fixture's SYN offered only MSS: nothing else may be in the SYN-ACK.
    assert not t.conn.sack_ok and not t.conn.ts_ok
    assert t.conn.rcv_wscale == 0


def test_syn_ack_echoes_negotiated_options() -> None:
    t = listen(opts(window_scaling=True, timestamps=True, sack=True))
    t.recv("S", mss=1460, wscale=3, sack_permitted=True, ts_val=777, ts_ecr=0)
    sa = t.expect("SA")
    assert sa.wscale == t.conn.rcv_wscale and sa.sack_permitted
    assert sa.ts_ecr == 777


def test_old_duplicate_syn_ack_is_reset_and_handshake_continues() -> None:
    """RFC 9293 §3.5 figure 9: why a third message is needed (old duplicate SYN)."""
    t = syn_sent()
    t.recv("SA", seq=90000, ack=12345, advance_peer=False)  # from an old incarnation
    t.expect("R", seq=12345)
    assert t.state is State.SYN_SENT
    t.recv("SA", ack=L(1))
    assert t.state is State.ESTABLISHED


def test_old_duplicate_syn_at_listener_is_reset_by_peer() -> None:
    """The peer answers our SYN-ACK to its stale SYN with RST; we forget it."""
    t = syn_received()
    t.recv("R", seq=R(1))
    assert t.state is State.CLOSED
    assert t.conn.close_reason is CloseReason.RESET


def test_rst_in_syn_received_not_exact_gets_challenge_ack() -> None:
    t = syn_received()
    t.recv("R", seq=R(100))
    assert t.state is State.SYN_RECEIVED
    t.expect("A", seq=L(1), ack=R(1))


# -- options -----------------------------------------------------------------------


@pytest.mark.parametrize(("family", "default"), [(4, 536), (6, 1220)], ids=["ipv4", "ipv6"])
def test_default_peer_mss_without_option_is_the_familys(family: int, default: int) -> None:
    """RFC 9293 §3.7.1 (MUST-15): 536 over IPv4, 1220 over IPv6 (its 1280-byte minimum
    MTU less 60)."""
    t = _closed(family, opts(mtu=1500))
    t.conn.connect(t.now)
    t.expect("S")
    t.recv("SA", ack=L(1))
    assert t.conn.peer_mss == default
    assert t.conn.mss == default


def test_effective_mss_is_min_of_both_sides() -> None:
    t = established(opts(mss=1000), mss=1460)
    assert t.conn.mss == 1000


def test_timestamps_take_option_space_from_mss() -> None:
    t = established(opts(timestamps=True), mss=1460, ts_val=5, ts_ecr=1)
    assert t.conn.ts_ok and t.conn.mss == 1448


def test_window_scale_negotiated_both_ways() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 20), wscale=2)
    assert (t.conn.snd_wscale, t.conn.rcv_wscale) == (2, 5)


def test_window_scale_off_when_peer_does_not_offer() -> None:
    t = established(opts(window_scaling=True, recv_buffer=1 << 20))
    assert (t.conn.snd_wscale, t.conn.rcv_wscale) == (0, 0)
    t.send(b"x")
    assert t.expect("PA").window == 0xFFFF


def test_window_scale_above_14_is_treated_as_14() -> None:
    """RFC 7323 §2.3."""
    t = established(opts(window_scaling=True), wscale=20)
    assert t.conn.snd_wscale == 14


def test_sack_needs_both_sides() -> None:
    assert established(sack_permitted=True).conn.sack_ok
    assert not established().conn.sack_ok
    assert not established(opts(sack=False), sack_permitted=True).conn.sack_ok


def test_timestamps_echoed_on_every_segment() -> None:
    t = established(opts(timestamps=True), ts_val=1000, ts_ecr=1)
    t.send(b"abc")
    seg = t.expect("PA")
    assert seg.ts_ecr == 1000 and seg.ts_val is not None


# -- ISN ---------------------------------------------------------------------------


def test_isn_depends_on_secret_tuple_and_clock() -> None:
    a = initial_sequence_number(SECRET, LOCAL, REMOTE, 0.0)
    assert a == initial_sequence_number(SECRET, LOCAL, REMOTE, 0.0)
    assert a != initial_sequence_number(b"other", LOCAL, REMOTE, 0.0)
    assert a != initial_sequence_number(SECRET, LOCAL, (REMOTE[0], 81), 0.0)
    # RFC 9293 §3.4.1: the clock part advances once every 4 microseconds.
    assert initial_sequence_number(SECRET, LOCAL, REMOTE, 1.0) == (a + 250_000) % 2**32


def test_connect_uses_rfc6528_isn_without_override() -> None:
    conn = Connection(LOCAL, REMOTE, opts(), SECRET, 0.0)
    conn.connect(3.0)
    assert conn.iss == initial_sequence_number(SECRET, LOCAL, REMOTE, 3.0)


def test_fixture_isns_are_near_the_wrap() -> None:
    assert LOCAL_ISS > 2**32 - 100 and REMOTE_ISS > 2**32 - 100


def test_new_syn_in_passive_syn_received_returns_to_listen() -> None:
    """RFC 9293 §3.10.7.4 fourth step, SYN-RECEIVED from a passive OPEN."""
    t = syn_received()
    t.recv("S", seq=R(100), advance_peer=False)
    assert t.state is State.CLOSED
    t.expect_nothing()


def test_new_syn_in_active_syn_received_gets_challenge_ack() -> None:
    t = syn_sent()
    t.recv("S")
    t.expect("SA")
    t.recv("S", seq=R(100), advance_peer=False)
    assert t.state is State.SYN_RECEIVED
    t.expect("A")


def test_listen_twice_is_an_error() -> None:
    import pytest

    t = listen()
    with pytest.raises(ConnectionError):
        t.conn.listen()
