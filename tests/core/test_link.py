"""Two endpoints back to back over a simulated, seeded, impaired link."""

from __future__ import annotations

import hashlib

import pytest

from aiotcp.core.connection import Connection
from aiotcp.core.events import CloseReason, ConnectionClosed, EofReceived
from aiotcp.core.options import TcpOptions
from aiotcp.core.segment import FIN, SYN, Segment
from aiotcp.core.state import State
from aiotcp.testing.corekit import (
    LOCAL,
    LOCAL_ISS,
    REMOTE,
    REMOTE_ISS,
    SECRET,
    Link,
    LinkProfile,
    connected_pair,
)

MB = 1 << 20


def payload(n: int, seed: int = 0) -> bytes:
    """Non-repeating bytes, so a misplaced segment cannot go unnoticed."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.blake2s(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:n])


def transfer(link: Link, a_to_b: int, b_to_a: int = 0, timeout: float = 600.0) -> None:
    data_ab, data_ba = payload(a_to_b, 1), payload(b_to_a, 2)
    if a_to_b:
        link.write(False, data_ab)
    if b_to_a:
        link.write(True, data_ba)
    link.run_until(
        lambda: len(link.received[True]) >= a_to_b and len(link.received[False]) >= b_to_a,
        timeout=timeout,
    )
    assert bytes(link.received[True]) == data_ab
    assert bytes(link.received[False]) == data_ba


def test_handshake_over_link() -> None:
    link = connected_pair()
    assert link.a.state is State.ESTABLISHED and link.b.state is State.ESTABLISHED
    assert link.a.ts_ok and link.a.sack_ok and link.a.snd_wscale == link.b.rcv_wscale


def test_megabyte_transfer_clean_link() -> None:
    link = connected_pair()
    transfer(link, 2 * MB)
    assert link.a.counters.retransmits == 0


def test_bidirectional_transfer() -> None:
    link = connected_pair()
    transfer(link, MB, MB)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_transfer_with_loss(seed: int) -> None:
    link = connected_pair(profile=LinkProfile(loss=0.03), seed=seed)
    transfer(link, MB)
    assert link.a.counters.retransmits > 0


@pytest.mark.parametrize("seed", [4, 5])
def test_transfer_with_duplication(seed: int) -> None:
    link = connected_pair(profile=LinkProfile(duplicate=0.1), seed=seed)
    transfer(link, MB // 2, MB // 4)


@pytest.mark.parametrize("seed", [6, 7])
def test_transfer_with_reordering(seed: int) -> None:
    link = connected_pair(profile=LinkProfile(delay=0.01, jitter=0.01), seed=seed)
    transfer(link, MB)
    assert link.b.counters.ooo_segments > 0


@pytest.mark.parametrize("seed", [8, 9, 10])
def test_transfer_with_everything(seed: int) -> None:
    profile = LinkProfile(delay=0.02, jitter=0.01, loss=0.05, duplicate=0.05)
    link = connected_pair(profile=profile, seed=seed)
    transfer(link, MB // 2, MB // 8)


def test_transfer_through_bottleneck_with_heavy_loss() -> None:
    profile = LinkProfile(delay=0.005, loss=0.15, bandwidth=2 * MB)
    link = connected_pair(profile=profile, seed=11)
    transfer(link, 200_000, timeout=3600)


@pytest.mark.parametrize(
    "changes",
    [
        {"timestamps": False},
        {"sack": False},
        {"window_scaling": False},
        {"timestamps": False, "sack": False, "window_scaling": False},
        {"nodelay": True},
        {"delayed_ack": False},
        {"mss": 536},
    ],
    ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()),
)
def test_transfer_with_option_combinations(changes: dict[str, object]) -> None:
    o = TcpOptions().replace(**changes)
    link = connected_pair(o, o, profile=LinkProfile(loss=0.02, jitter=0.005), seed=12)
    transfer(link, MB // 2)


def test_small_buffers_force_zero_window_and_persist() -> None:
    small = TcpOptions(recv_buffer=4000, send_buffer=8000)
    link = connected_pair(TcpOptions(), small, seed=13)
    link.auto_read = False
    link.write(False, payload(50_000))
    link.run_for(5.0)
    assert link.b.rcv_wnd == 0
    link.run_for(10.0)
    assert link.a.counters.zero_window_probes > 0
    link.auto_read = True
    link.run_until(lambda: len(link.received[True]) == 50_000)
    assert bytes(link.received[True]) == payload(50_000)


def test_lost_syn_is_retransmitted_over_link() -> None:
    a = Connection(LOCAL, REMOTE, TcpOptions(), SECRET, 0.0, iss=LOCAL_ISS)
    b = Connection(REMOTE, LOCAL, TcpOptions(), SECRET, 0.0, iss=REMOTE_ISS)
    b.listen()
    link = Link(a, b)
    dropped: list[Segment] = []

    def drop_first_syn(to_b: bool, seg: Segment) -> bool:
        if seg.flags & SYN and not dropped:
            dropped.append(seg)
            return True
        return False

    link.drop_filter = drop_first_syn
    a.connect(0.0)
    link.run_until(lambda: a.state is State.ESTABLISHED and b.state is State.ESTABLISHED)
    assert 1.0 <= link.now < 1.1


def test_simultaneous_open_over_link() -> None:
    a = Connection(LOCAL, REMOTE, TcpOptions(), SECRET, 0.0, iss=LOCAL_ISS)
    b = Connection(REMOTE, LOCAL, TcpOptions(), SECRET, 0.0, iss=REMOTE_ISS)
    a.connect(0.0)
    b.connect(0.0)
    link = Link(a, b)
    link.run_until(lambda: a.state is State.ESTABLISHED and b.state is State.ESTABLISHED)
    transfer(link, 100_000, 100_000)


# -- every close order -------------------------------------------------------------


def _settle(link: Link) -> None:
    link.run_for(200.0)
    assert link.a.state is State.CLOSED and link.b.state is State.CLOSED


def test_client_closes_first() -> None:
    link = connected_pair()
    transfer(link, 100_000, 50_000)
    link.a.close(link.now)
    link.run_until(lambda: link.b.state is State.CLOSE_WAIT)
    assert EofReceived() in link.events[True]
    link.b.close(link.now)
    link.run_until(lambda: link.a.state is State.TIME_WAIT and link.b.state is State.CLOSED)
    assert link.b.close_reason is CloseReason.NORMAL
    _settle(link)


def test_server_closes_first() -> None:
    link = connected_pair()
    transfer(link, 10_000, 10_000)
    link.b.close(link.now)
    link.run_until(lambda: link.a.state is State.CLOSE_WAIT)
    link.a.close(link.now)
    link.run_until(lambda: link.b.state is State.TIME_WAIT and link.a.state is State.CLOSED)
    _settle(link)


def test_simultaneous_close_over_link() -> None:
    link = connected_pair()
    transfer(link, 10_000)
    link.a.close(link.now)
    link.b.close(link.now)
    link.run_until(lambda: link.a.state is State.TIME_WAIT and link.b.state is State.TIME_WAIT)
    assert any(ev.new is State.CLOSING for ev in link.events[False] if hasattr(ev, "new"))
    _settle(link)


def test_close_right_after_write_delivers_everything_first() -> None:
    link = connected_pair(profile=LinkProfile(loss=0.03), seed=14)
    data = payload(300_000, 9)
    link.write(False, data, then_shutdown=True)
    link.run_until(lambda: link.b.state is State.CLOSE_WAIT)
    assert bytes(link.received[True]) == data
    link.b.close(link.now)
    _settle(link)


def test_half_close_then_reverse_transfer() -> None:
    link = connected_pair(profile=LinkProfile(loss=0.02), seed=15)
    link.write(False, b"request", then_shutdown=True)
    link.run_until(lambda: link.b.state is State.CLOSE_WAIT)
    reply = payload(400_000, 3)
    link.write(True, reply, then_shutdown=True)
    link.run_until(lambda: len(link.received[False]) == len(reply))
    assert bytes(link.received[False]) == reply
    _settle(link)


def test_lossy_close_in_every_order() -> None:
    for seed in range(16, 22):
        link = connected_pair(profile=LinkProfile(loss=0.2, delay=0.01), seed=seed)
        first, second = (link.a, link.b) if seed % 2 else (link.b, link.a)
        first.close(link.now)
        if seed % 3 == 0:
            second.close(link.now)
        else:
            link.run_until(lambda s=second: s.state is State.CLOSE_WAIT, timeout=300)
            second.close(link.now)
        link.run_for(400.0)
        assert link.a.state is State.CLOSED and link.b.state is State.CLOSED, seed


def test_abort_resets_peer() -> None:
    link = connected_pair()
    link.a.abort()
    link.run_until(lambda: link.b.state is State.CLOSED)
    assert link.b.close_reason is CloseReason.RESET
    assert ConnectionClosed(CloseReason.RESET) in link.events[True]


def test_keepalive_keeps_idle_connection_and_detects_dead_peer() -> None:
    ka = TcpOptions(keepalive=True, keepalive_idle=60, keepalive_interval=5, keepalive_count=3)
    link = connected_pair(ka, TcpOptions())
    link.run_for(1000.0)
    assert link.a.state is State.ESTABLISHED
    assert link.a.counters.keepalive_probes >= 10
    link.drop_filter = lambda to_b, seg: True  # the peer vanishes
    link.run_for(200.0)
    assert link.a.state is State.CLOSED
    assert link.a.close_reason is CloseReason.TIMEOUT


def test_peer_vanishing_mid_transfer_times_out() -> None:
    o = TcpOptions(retries=5)
    link = connected_pair(o, o)
    link.write(False, payload(100_000))
    link.run_for(0.05)
    link.drop_filter = lambda to_b, seg: True
    link.run_for(600.0)
    assert link.a.state is State.CLOSED and link.a.close_reason is CloseReason.TIMEOUT


def test_lost_final_fin_ack_recovered() -> None:
    link = connected_pair()
    link.a.close(link.now)
    link.run_until(lambda: link.b.state is State.CLOSE_WAIT)
    link.b.close(link.now)
    dropped: list[Segment] = []

    def drop_ack_of_fin(to_b: bool, seg: Segment) -> bool:
        # Drop a's first pure ACK after b's FIN: b must retransmit the FIN.
        if to_b and not seg.flags & FIN and link.b.state is State.LAST_ACK and not dropped:
            dropped.append(seg)
            return True
        return False

    link.drop_filter = drop_ack_of_fin
    link.run_until(lambda: link.b.state is State.CLOSED)
    assert dropped and link.b.counters.retransmits >= 1
    assert link.a.state is State.TIME_WAIT


@pytest.mark.parametrize("timestamps", [True, False])
def test_syn_cookie_connection_carries_a_bulk_transfer(timestamps: bool) -> None:
    """A connection rebuilt from a SYN cookie must agree with the client on window
    scaling (carried in the cookie's TSval) or the transfer would stall or corrupt."""
    from aiotcp.core.listener import Listener
    from aiotcp.core.segment import SYN as SYN_FLAG
    from aiotcp.testing.corekit import LOCAL_IP, REMOTE_IP

    o = TcpOptions(timestamps=timestamps, recv_buffer=1 << 20, backlog=1)
    listener = Listener(REMOTE, o, SECRET + b"b", 0.0)
    flood = Segment(1, REMOTE[1], 5, 0, SYN_FLAG, 1000)
    assert listener.receive(flood, bytes((198, 18, 0, 9)), REMOTE_IP, 0.0) is not None
    a = Connection(LOCAL, REMOTE, o, SECRET, 0.0, iss=LOCAL_ISS)
    a.connect(0.0)
    [syn] = a.segments_to_send(0.0)
    assert listener.receive(syn, LOCAL_IP, REMOTE_IP, 0.0) is None  # SYN queue full
    [(synack, _, _)] = listener.segments_to_send(0.0)  # the stateless cookie SYN-ACK
    assert listener.counters.cookies_sent == 1
    a.receive(synack, 0.01)
    [ack] = a.segments_to_send(0.01)
    b = listener.receive(ack, LOCAL_IP, REMOTE_IP, 0.02)
    assert b is not None and b.state is State.ESTABLISHED
    assert (a.snd_wscale, a.rcv_wscale) == (b.rcv_wscale, b.snd_wscale)
    link = Link(a, b, LinkProfile(loss=0.01), seed=23, now=0.02)
    transfer(link, MB, MB // 4)
