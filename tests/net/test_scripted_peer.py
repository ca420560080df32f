"""aiotcp against a scripted peer that sends exact segments (packetdrill style).

aiotcp runs in host A on the test's event loop; the peer is a ``ScriptedEndpoint``
on host B's raw socket, driven from a worker thread, so timing-sensitive
sequences (crossing FINs, a retransmitted FIN in TIME-WAIT, SYNs that never
complete) happen exactly as written.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import time
from collections.abc import Callable
from typing import TypeVar

import pytest

import aiotcp
from aiotcp.core.segment import ACK, FIN, RST, SYN, Segment
from aiotcp.core.seq import seq_add
from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver
from aiotcp.io.guards import make_guard
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host
from aiotcp.testing.scripted import ScriptedEndpoint, start_peer

T = TypeVar("T")
PEER_PORT = 5000
PEER_ISN = 0xFFFFFF00  # near the wrap: every comparison below crosses 2**32
LOCAL_PORT = 62001  # the peer must know aiotcp's port before the SYN arrives


async def with_peer(
    b: Host, remote: tuple[str, int], script: Callable[[ScriptedEndpoint], T]
) -> asyncio.Future[T]:
    """Start ``script`` on B (in ``remote``'s family) in a worker thread; returns once
    the peer's socket is open.

    The peer owns PEER_PORT through a guard of its own, so B's kernel stays quiet.
    """
    address = b.address_of("ipv6" if ":" in remote[0] else "ipv4")
    return await start_peer(b, PEER_PORT, remote, script, guard="iptables", address=address)


def transitions(log: list[tuple[State, State]]) -> Callable[[ConnectionDriver, State, State], None]:
    def observe(driver: ConnectionDriver, old: State, new: State) -> None:
        log.append((old, new))

    return observe


def accept_syn(ep: ScriptedEndpoint) -> int:
    """Answer aiotcp's SYN with a SYN-ACK from PEER_ISN; returns aiotcp's ISS."""
    syn = ep.expect(lambda s: s.flags == SYN)
    assert syn is not None, "no SYN from aiotcp"
    ep.send(Segment(seq=PEER_ISN, ack=seq_add(syn.seq, 1), flags=SYN | ACK, window=65535, mss=1460))
    ack = ep.expect(lambda s: s.flags & ACK and not s.flags & SYN)
    assert ack is not None and ack.ack == seq_add(PEER_ISN, 1)
    return syn.seq


def test_simultaneous_close_goes_through_closing(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """RFC 9293 §3.6 case 2: FINs cross; both sides pass CLOSING to TIME-WAIT."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    log: list[tuple[State, State]] = []

    def script(ep: ScriptedEndpoint) -> tuple[int, int]:
        iss = accept_syn(ep)
        ours = ep.expect(lambda s: bool(s.flags & FIN))
        assert ours is not None and ours.seq == seq_add(iss, 1)
        # Our FIN crosses theirs: it does not acknowledge aiotcp's FIN.
        ep.send(Segment(seq=seq_add(PEER_ISN, 1), ack=ours.seq, flags=FIN | ACK, window=65535))
        ack_of_our_fin = ep.expect(lambda s: s.ack == seq_add(PEER_ISN, 2))
        assert ack_of_our_fin is not None
        ep.send(Segment(seq=seq_add(PEER_ISN, 2), ack=seq_add(iss, 2), flags=ACK, window=65535))
        return iss, ack_of_our_fin.seq

    async def main() -> None:
        aiotcp.get_stack().state_observers.append(transitions(log))
        result = await with_peer(b, (here, LOCAL_PORT), script)
        _, writer = await aiotcp.open_connection(there, PEER_PORT, local_addr=(here, LOCAL_PORT))
        writer.close()
        await result
        await asyncio.sleep(0.1)
        assert [c["state"] for c in aiotcp.connections()] == ["TIME-WAIT"]

    with a.entered():
        run(main, loop_kind)
    states = [new for _, new in log]
    assert states[:5] == [  # then CLOSED when the test's stack closes
        State.SYN_SENT,
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.CLOSING,
        State.TIME_WAIT,
    ]


def test_retransmitted_fin_in_time_wait_is_reacked_and_2msl_restarts(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """RFC 9293 §3.10.7.4 TIME-WAIT: a retransmitted FIN is acknowledged, 2MSL restarts."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    msl = 0.5

    def script(ep: ScriptedEndpoint) -> list[int]:
        iss = accept_syn(ep)
        fin = ep.expect(lambda s: bool(s.flags & FIN))
        assert fin is not None
        ep.send(Segment(seq=seq_add(PEER_ISN, 1), ack=seq_add(iss, 2), flags=FIN | ACK, window=9))
        acks = []
        for _ in range(2):
            ack = ep.expect(lambda s: s.flags == ACK and s.ack == seq_add(PEER_ISN, 2))
            assert ack is not None, "the FIN was not acknowledged"
            acks.append(ack.ack)
            time.sleep(0.4)  # most of 2MSL (1 s): a restart keeps TIME-WAIT alive past it
            ep.send(Segment(seq=seq_add(PEER_ISN, 1), ack=seq_add(iss, 2), flags=FIN | ACK))
        return acks

    async def main() -> None:
        result = await with_peer(b, (here, LOCAL_PORT), script)
        _, writer = await aiotcp.open_connection(
            there, PEER_PORT, local_addr=(here, LOCAL_PORT), msl=msl
        )
        writer.close()
        acks = await result
        assert len(acks) == 2
        await asyncio.sleep(0.5)  # 1.3 s after the first FIN: alive only if 2MSL restarted
        table = aiotcp.connections()
        assert [c["state"] for c in table] == ["TIME-WAIT"]
        assert 0 < table[0]["timers"]["time_wait"] <= 2 * msl
        await asyncio.sleep(2 * msl)
        assert aiotcp.connections() == []

    with a.entered():
        run(main, loop_kind)


def test_backlog_holds_syn_received_entries_and_drops_the_rest(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """SYNs that never complete pile up as SYN-RECEIVED up to the backlog (the seeds'
    ``netstat | grep SYN_RECV``); beyond it, without SYN cookies, SYNs get no answer."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    ports = list(range(41000, 41006))

    def flood() -> dict[int, bool]:
        answered = {}
        with b.entered(), make_guard("iptables") as guard, RawSocket() as raw:
            for p in ports:
                guard.claim(p)
            raw.set_port_ranges(guard.port_ranges())
            eps = [ScriptedEndpoint(raw, (there, p), (here, 8080)) for p in ports]
            for ep in eps:
                ep.send(Segment(seq=1000, flags=SYN, window=65535, mss=1460))
            for p, ep in zip(ports, eps, strict=True):
                answered[p] = ep.expect(lambda s: s.flags == SYN | ACK, timeout=0.5) is not None
        return answered

    async def main() -> None:
        server = await aiotcp.start_server(
            lambda r, w: None, port=8080, backlog=2, syn_cookies=False
        )
        async with server:
            answered = await asyncio.to_thread(flood)
            assert sum(answered.values()) == 2
            states = sorted(c["state"] for c in aiotcp.connections())
            assert states == ["LISTEN", "SYN-RECEIVED", "SYN-RECEIVED"]

    with a.entered():
        run(main, loop_kind)


def test_stalled_accept_queue_then_start_serving_serves_everyone(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """Like the kernel's accept queue: a server not yet serving holds ``backlog``
    established connections; later SYNs are dropped until it starts accepting."""
    a, b = family_hosts
    here = a.address_of(family)

    def connect() -> bytes:
        with socket.create_connection((here, 8080), timeout=10) as s:
            s.sendall(b"hello\n")
            return s.recv(100)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await aiotcp.start_server(handle, port=8080, backlog=2, start_serving=False)
        async with server:
            clients = [asyncio.ensure_future(asyncio.to_thread(b.call, connect)) for _ in range(4)]
            await asyncio.sleep(0.5)
            table = aiotcp.connections()
            listener = next(c for c in table if c["state"] == "LISTEN")
            assert listener["accept_queue"] == 2
            assert not server.is_serving()
            await server.start_serving()
            replies = await asyncio.gather(*clients)  # the dropped SYNs are retried in 1 s
            assert replies == [b"hello\n"] * 4

    with a.entered():
        run(main, loop_kind)


def test_segment_for_no_connection_on_an_owned_port_gets_the_rfc_rst(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """RFC 9293 §3.10.7.1: an ACK for a port aiotcp owns but no connection matches is
    answered with <SEQ=SEG.ACK><CTL=RST>; a SYN with <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)

    def script(ep: ScriptedEndpoint) -> list[Segment | None]:
        iss = accept_syn(ep)  # aiotcp's real connection uses PEER_PORT; ours is a stranger
        del iss
        with b.entered(), make_guard("iptables") as guard, RawSocket() as raw:
            guard.claim(PEER_PORT + 1)
            raw.set_port_ranges(guard.port_ranges())
            stranger = ScriptedEndpoint(raw, (there, PEER_PORT + 1), (here, LOCAL_PORT))
            stranger.send(Segment(seq=500, ack=12345, flags=ACK, window=100))
            rst1 = stranger.expect(lambda s: True, timeout=1.0)
            stranger.send(Segment(seq=700, flags=SYN, window=100))
            rst2 = stranger.expect(lambda s: True, timeout=1.0)
        return [rst1, rst2]

    async def main() -> list[Segment | None]:
        result = await with_peer(b, (here, LOCAL_PORT), script)
        _, writer = await aiotcp.open_connection(there, PEER_PORT, local_addr=(here, LOCAL_PORT))
        replies = await result
        writer.transport.abort()
        return replies

    with a.entered():
        rst1, rst2 = run(main, loop_kind)
    assert rst1 is not None and (rst1.flags, rst1.seq) == (RST, 12345)
    assert rst2 is not None and (rst2.flags, rst2.seq, rst2.ack) == (RST | ACK, 0, 701)


def test_abort_on_overflow_resets_the_handshake_that_finds_the_accept_queue_full(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """Linux's tcp_abort_on_overflow: the final ACK that cannot be accepted gets a RST;
    without the option it is dropped (the client's retransmission may find room)."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)

    def handshake_pair() -> list[Segment | None]:
        with b.entered(), make_guard("iptables") as guard, RawSocket() as raw:
            ports = [guard.claim(p) for p in (42000, 42001)]
            raw.set_port_ranges(guard.port_ranges())
            eps = [ScriptedEndpoint(raw, (there, p), (here, 8080)) for p in ports]
            synacks = []
            for ep in eps:  # the second SYN overflows the SYN queue: a cookie answers
                ep.send(Segment(seq=1000, flags=SYN, window=65535, mss=1460))
                synacks.append(ep.expect(lambda s: s.flags == SYN | ACK))
            replies = []
            for ep, sa in zip(eps, synacks, strict=True):
                assert sa is not None
                ep.send(Segment(seq=1001, ack=seq_add(sa.seq, 1), flags=ACK, window=65535))
                replies.append(ep.expect(lambda s: bool(s.flags & RST), timeout=0.5))
        return replies

    for abort in (False, True):

        async def main(abort: bool = abort) -> list[Segment | None]:
            server = await aiotcp.start_server(
                lambda r, w: None,
                port=8080,
                backlog=1,
                start_serving=False,
                abort_on_overflow=abort,
            )
            async with server:
                return await asyncio.to_thread(handshake_pair)

        with a.entered():
            first, second = run(main, loop_kind)
        assert first is None  # accepted into the queue
        assert (second is not None) is abort


def test_busy_port_raises_eaddrinuse(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, _ = family_hosts

    async def main() -> None:
        async with await aiotcp.start_server(lambda r, w: None, port=8080):
            with pytest.raises(OSError) as info:
                await aiotcp.start_server(lambda r, w: None, port=8080)
            assert info.value.errno == errno.EADDRINUSE
        # A kernel program has the port (IPv6 only: one family is enough to hold it).
        family_id = socket.AF_INET if family == "ipv4" else socket.AF_INET6
        kernel = socket.create_server(
            ("0.0.0.0" if family == "ipv4" else "::", 8090), family=family_id
        )
        with kernel, pytest.raises(OSError) as info:
            await aiotcp.start_server(lambda r, w: None, port=8090)
        assert info.value.errno == errno.EADDRINUSE

    with a.entered():
        run(main, loop_kind)
