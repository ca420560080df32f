"""RFC scenarios against the real running stack, packetdrill style.

aiotcp runs in host A on the test's event loop (asyncio and uvloop); host B is a
``ScriptedEndpoint`` in a worker thread that sends exact segments and asserts the
exact replies with ``expect_segment``.  Sequence numbers are written relative to
the ISNs (``ep.snd(n)``: the script's bytes, ``ep.rcv(n)``: aiotcp's) and the
script's ISN sits just below 2**32, so every scenario crosses the wrap.  Each test's
docstring names the RFC clause it checks; timing assertions have wide margins.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from ipaddress import ip_address
from typing import Any, TypeVar

import pytest

import aiotcp
from aiotcp.core.segment import ACK, FIN, PSH, Segment, encode, encode_options
from aiotcp.core.seq import seq_lt, seq_sub
from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, pattern, require_root, two_hosts
from aiotcp.testing.scripted import ScriptedEndpoint, start_peer, while_peer_runs

T = TypeVar("T")

PEER_PORT = 5000
PEER_ISN = 0xFFFFFF00  # snd(1) = 0xFFFFFF01: the data crosses 2**32 after 255 bytes
LOCAL_PORT = 62001  # aiotcp's port, known to the script before the SYN arrives
SERVER_PORT = 8080
WIN = 65535


# ------------------------------------------------------------------ harness


@pytest.fixture
def hosts(family: str) -> Iterator[tuple[Host, Host]]:
    """conftest's two hosts, but with TSO/GSO/GRO off on the veth pair, and IPv6
    addresses when the scenario runs over IPv6 (``family``; see ``address``).

    aiotcp hands runs of segments to the kernel as one GSO frame; over veth that
    frame would reach the script whole.  Without offloads the kernel splits it as a
    NIC would, so the script sees the segments that would be on the wire.
    """
    require_root()
    with two_hosts(offload=False, ipv6=family == "ipv6") as pair:
        yield pair


def address(host: Host) -> str:
    """``host``'s address in the family of the scenario: the hosts have IPv6
    addresses only when it runs over IPv6."""
    return host.address6 or host.address


def link_mss(host: Host) -> int:
    """The MSS aiotcp advertises on the 1500-byte test link: less IPv6's larger header."""
    return 1460 if host.address6 is None else 1440


class StackView:
    """The stack under test as seen from the script's thread (through its loop)."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.transitions: list[tuple[float, State, State]] = []

    def attach(self) -> None:
        """Call on the loop: remember it and log every state transition with its time."""
        self.loop = asyncio.get_running_loop()

        def observe(driver: ConnectionDriver, old: State, new: State) -> None:
            self.transitions.append((time.monotonic(), old, new))

        aiotcp.get_stack().state_observers.append(observe)

    def states(self) -> list[str]:
        """``aiotcp.connections()`` states, sorted (from any thread)."""

        async def table() -> list[str]:
            return sorted(row["state"] for row in aiotcp.connections())

        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(table(), self.loop).result(timeout=5)

    def new_states(self) -> list[State]:
        return [new for _, _, new in self.transitions]


def scenario(
    hosts: tuple[Host, Host],
    loop_kind: LoopKind,
    script: Callable[[ScriptedEndpoint], T],
    local: Callable[[asyncio.Future[T]], Awaitable[Any]] | None = None,
    *,
    view: StackView | None = None,
    serve: aiotcp.streams.ClientConnectedCb | None = None,
    server_options: dict[str, Any] | None = None,
    **stack_options: Any,
) -> T:
    """Run ``script`` as B:PEER_PORT and ``local(peer)`` on A's aiotcp; return the script's result.

    The script talks to A:LOCAL_PORT (aiotcp's active opens) or, with ``serve``, to an
    aiotcp server on A:SERVER_PORT that is listening before the script starts.  A
    failing script fails the test at once, with its transcript.
    """
    a, b = hosts

    async def main() -> T:
        if view is not None:
            view.attach()
        if serve is None:
            peer = await start_peer(
                b, PEER_PORT, (address(a), LOCAL_PORT), script, address=address(b)
            )
            if local is not None:
                await while_peer_runs(peer, local(peer))
            return await while_peer_runs(peer, peer)
        async with await aiotcp.start_server(serve, port=SERVER_PORT, **(server_options or {})):
            peer = await start_peer(
                b, PEER_PORT, (address(a), SERVER_PORT), script, address=address(b)
            )
            if local is not None:
                await while_peer_runs(peer, local(peer))
            return await while_peer_runs(peer, peer)

    with a.entered():
        return run(main, loop_kind, timeout=30, **stack_options)


async def connect(
    b: Host, a: Host, peer: asyncio.Future[Any], **options: Any
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await while_peer_runs(
        peer,
        aiotcp.open_connection(
            address(b), PEER_PORT, local_addr=(address(a), LOCAL_PORT), **options
        ),
    )


def sender(
    b: Host, a: Host, data: bytes, **options: Any
) -> Callable[[asyncio.Future[Any]], Awaitable[None]]:
    """The common local side: connect, write ``data``, wait for the script, abort."""

    async def local(peer: asyncio.Future[Any]) -> None:
        _, writer = await connect(b, a, peer, **options)
        writer.write(data)
        await peer
        writer.transport.abort()

    return local


def handshake(ep: ScriptedEndpoint, *, win: int = WIN, **options: Any) -> tuple[Segment, Segment]:
    """Answer aiotcp's SYN with a SYN-ACK from PEER_ISN carrying ``options``.

    Returns aiotcp's SYN and its handshake ACK (RFC 9293 §3.5 figure 6, lines 2-4).
    """
    syn = ep.expect_segment("S", ack=0)
    options.setdefault("mss", 1460)
    ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(1), win=win, **options)
    ack = ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), length=0, within=(0, 0.5))
    return syn, ack


def is_pure_ack(seg: Segment) -> bool:
    return seg.flags == ACK and not seg.payload


def acks_below(end: int) -> Callable[[Segment], bool]:
    """``ignore=`` for the intermediate ACKs of a burst: pure ACKs short of ``end``."""
    return lambda seg: is_pure_ack(seg) and seq_lt(seg.ack, end)


async def read_all(reader: asyncio.StreamReader, peer: asyncio.Future[Any]) -> bytes:
    """Everything up to EOF."""
    return await while_peer_runs(peer, reader.read())


# ------------------------------------------------------------------ opening


def test_simultaneous_open_goes_through_syn_received(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.5 figure 8 and §3.10.7.3 (SYN-SENT, fourth check): a SYN without
    ACK moves SYN-SENT to SYN-RECEIVED with <SEQ=ISS><ACK=RCV.NXT><CTL=SYN,ACK>; the
    peer's SYN,ACK then completes the handshake (§3.10.7.4) and data flows both ways.
    The SYN,ACK carries only options the peer's SYN offered (RFC 7323 §1.3, §2.2)."""
    a, b = hosts
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        ep.expect_segment("S", ack=0)
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)  # crosses aiotcp's SYN
        ep.expect_segment(
            "SA", seq=ep.rcv(0), ack=ep.snd(1), mss=link_mss(a), wscale=None,
            sack_permitted=False, ts_val=None, within=(0, 0.5),
        )  # fmt: skip
        ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(1), win=WIN, mss=1460)
        # A bare ACK of that SYN,ACK is allowed (§3.10.7.4 would even ask for one).
        ep.expect_segment("PA", seq=ep.rcv(1), ack=ep.snd(1), payload=b"hello", ignore=is_pure_ack)
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(6), payload=b"world")
        ep.expect_segment("A", seq=ep.rcv(6), ack=ep.snd(6), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert [c["state"] for c in aiotcp.connections()] == ["ESTABLISHED"]
        writer.write(b"hello")
        assert await while_peer_runs(peer, reader.readexactly(5)) == b"world"
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local, view=view)
    assert view.new_states()[:3] == [State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED]


def test_lost_syn_ack_is_resent_with_the_same_isn(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """Lost SYN-ACK (RFC 9293 §3.8.1, §3.10.7.4 SYN-RECEIVED; RFC 6298 §5): aiotcp's
    timer resends the SYN,ACK, and the client's retransmitted SYN is answered at once;
    both carry the same ISN, from the one half-open connection, and the handshake then
    completes.  (Linux answers a retransmitted SYN the same way.)"""
    view = StackView()
    mss = link_mss(hosts[0])

    def script(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        first = ep.expect_segment(
            "SA", ack=ep.snd(1), mss=mss, wscale=None, sack_permitted=False,
            ts_val=None, within=(0, 0.5),
        )  # fmt: skip
        # Lost: aiotcp's retransmission timer (rto_initial 0.3 s) resends it...
        ep.expect_segment("SA", seq=first.seq, ack=ep.snd(1), within=(0.2, 0.8))
        # ... and the client's own retransmitted SYN is answered at once, not at the
        # next timer expiry (0.6 s later).
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        ep.expect_segment("SA", seq=first.seq, ack=ep.snd(1), within=(0, 0.3))
        assert view.states() == ["LISTEN", "SYN-RECEIVED"]
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"ping\n")
        ep.expect_segment("PA", seq=ep.rcv(1), ack=ep.snd(6), payload=b"ping\n", ignore=is_pure_ack)
        ep.send_segment("A", seq=ep.snd(6), ack=ep.rcv(6))

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())

    scenario(hosts, loop_kind, script, view=view, serve=echo, server_options={"rto_initial": 0.3})


def test_unacceptable_syn_ack_is_reset_and_the_connect_goes_on(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.3 (SYN-SENT) first check: a SYN,ACK whose ACK is not in
    ISS < SEG.ACK =< SND.NXT gets <SEQ=SEG.ACK><CTL=RST> and is otherwise ignored; a
    RST with an unacceptable ACK, or without ACK, is dropped (second check).  The
    genuine SYN,ACK that follows still completes the handshake."""
    a, b = hosts
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        ep.expect_segment("S", ack=0)
        ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(1000), win=WIN, mss=1460)
        ep.expect_segment("R", seq=ep.rcv(1000), within=(0, 0.5))
        ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(0), win=WIN, mss=1460)  # ACK = ISS
        ep.expect_segment("R", seq=ep.rcv(0), within=(0, 0.5))
        ep.send_segment("RA", seq=ep.snd(1), ack=ep.rcv(1000))
        ep.send_segment("R", seq=ep.snd(1))
        ep.expect_silence(0.2)
        assert view.states() == ["SYN-SENT"]
        ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(1), win=WIN, mss=1460)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        _, writer = await connect(b, a, peer)
        await peer
        assert [c["state"] for c in aiotcp.connections()] == ["ESTABLISHED"]
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local, view=view)


def test_rst_in_syn_received_returns_the_listener_to_listen(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.4 second check, SYN-RECEIVED from a passive OPEN: a RST (at
    RCV.NXT, RFC 5961 §3.2) returns the connection to LISTEN without telling the user;
    the listener then accepts a new connection from the same port."""
    view = StackView()
    accepted: list[bytes] = []

    def script(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        assert view.states() == ["LISTEN", "SYN-RECEIVED"]
        ep.send_segment("R", seq=ep.snd(1))
        ep.expect_silence(0.2)
        assert view.states() == ["LISTEN"]
        ep.iss = PEER_ISN + 100_000 - (1 << 32)  # a new incarnation, past the wrap
        ep.send_segment("S", seq=ep.snd(0), win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))
        ep.expect_segment("PA", seq=ep.rcv(1), ack=ep.snd(1), payload=b"hi")
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(3))

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(b"hi")
        writer.write(b"hi")

    scenario(hosts, loop_kind, script, view=view, serve=greet)
    assert accepted == [b"hi"]  # the reset half-open connection never reached the user


def test_bad_ack_in_syn_received_gets_a_rst(hosts: tuple[Host, Host], loop_kind: LoopKind) -> None:
    """RFC 9293 §3.10.7.4 fifth check, SYN-RECEIVED: an ACK outside
    SND.UNA < SEG.ACK =< SND.NXT gets <SEQ=SEG.ACK><CTL=RST>; the half-open connection
    stays and the right ACK then completes the handshake."""
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1000))
        ep.expect_segment("R", seq=ep.rcv(1000), within=(0, 0.5))
        assert view.states() == ["LISTEN", "SYN-RECEIVED"]
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))
        ep.expect_segment("PA", seq=ep.rcv(1), ack=ep.snd(1), payload=b"hi", within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(3))

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hi")

    scenario(hosts, loop_kind, script, view=view, serve=greet)


def test_data_and_fin_on_the_handshake_ack_are_accepted(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.4 SYN-RECEIVED: an acceptable ACK enters ESTABLISHED "and
    continue processing": text and FIN on the handshake's third segment are kept (the
    client that connects, sends and shuts down at once).  Both are ACKed, the server
    reads them then EOF, and its reply and FIN follow (CLOSE-WAIT, LAST-ACK)."""
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("FPA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"hi")
        ep.expect_segment(ack=ep.snd(4), within=(0, 0.5), ignore=is_pure_ack)  # the reply
        reply = bytearray(ep.received[-1].payload)
        for _ in range(3):  # the reply and the FIN, maybe in one segment
            if ep.received[-1].flags & FIN:
                break
            seg = ep.expect_segment(seq=ep.rcv(1 + len(reply)), ack=ep.snd(4), within=(0, 0.5))
            reply += seg.payload
        assert (bytes(reply), bool(ep.received[-1].flags & FIN)) == (b"bye", True)
        ep.send_segment("A", seq=ep.snd(4), ack=ep.rcv(1 + len(reply) + 1))

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert await reader.read() == b"hi"
        writer.write(b"bye")
        writer.close()

    scenario(hosts, loop_kind, script, view=view, serve=answer)
    assert view.new_states()[-5:] == [
        State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT, State.LAST_ACK, State.CLOSED,
    ]  # fmt: skip


# ------------------------------------------------------------------ RFC 5961


def test_rst_needs_the_exact_sequence_number(hosts: tuple[Host, Host], loop_kind: LoopKind) -> None:
    """RFC 5961 §3.2 (RFC 9293 §3.10.7.4 second check): a RST outside the window is
    dropped silently; in the window but not at RCV.NXT it gets a challenge ACK
    <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and the connection stays; at exactly RCV.NXT
    it resets the connection (the reader raises ConnectionResetError), unanswered."""
    a, b = hosts
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        _, ack = handshake(ep)
        ep.send_segment("R", seq=ep.snd(1 + (1 << 20)))  # beyond any window offered
        ep.expect_silence(0.2)
        ep.send_segment("R", seq=ep.snd(1 + 1000))
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), win=ack.window, within=(0, 0.5))
        assert view.states() == ["ESTABLISHED"]
        ep.send_segment("R", seq=ep.snd(1))
        ep.expect_silence(0.2)

    async def local(peer: asyncio.Future[None]) -> None:
        reader, _ = await connect(b, a, peer)
        with pytest.raises(ConnectionResetError):
            await while_peer_runs(peer, reader.read(100))
        await peer
        assert aiotcp.connections() == []

    scenario(hosts, loop_kind, script, local, view=view)


def test_syn_in_established_gets_a_challenge_ack(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 5961 §4.2 (RFC 9293 §3.10.7.4 fourth check): a SYN in a synchronized state,
    whatever its sequence number, is answered with a challenge ACK
    <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and changes nothing; data still flows."""
    a, b = hosts
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        _, ack = handshake(ep)
        ep.send_segment("S", seq=ep.snd(1 + 100), win=WIN, mss=1460)  # in the window
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), win=ack.window, within=(0, 0.5))
        assert view.states() == ["ESTABLISHED"]
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"still here")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(11), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await while_peer_runs(peer, reader.readexactly(10)) == b"still here"
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local, view=view)


def test_ack_of_unsent_or_too_old_data_is_challenged_and_dropped(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 5961 §5.2 (RFC 9293 §3.10.7.4 fifth check): a segment is acceptable only if
    SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT; otherwise it is discarded, data and
    all, and an ACK is sent back.  Linux 6.18 does the same (``tcp_ack``: challenge
    ACK for TCP_TOO_OLD_ACK and TCP_ACK_UNSENT_DATA).  Blind data injection fails."""
    a, b = hosts

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)  # MAX.SND.WND = 65535; aiotcp sent nothing: SND.UNA = SND.NXT
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1 + 1000), payload=b"EVIL1")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1 - 70000), payload=b"EVIL2")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"good")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(5), within=(0, 0.5))
        ep.send_segment("FA", seq=ep.snd(5), ack=ep.rcv(1))
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(6), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await read_all(reader, peer) == b"good"
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


# ------------------------------------------------------------------ windows


def test_data_beyond_the_receive_window_is_acked_and_dropped(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.4 first check: a segment entirely beyond RCV.NXT+RCV.WND is not
    acceptable: <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> with the current window, and its
    data is dropped; one straddling the right edge is trimmed to the window (§3.10.7.4:
    "trimmed to fit the window"), so only the in-window bytes are ever acknowledged
    or delivered."""
    a, b = hosts
    data = pattern(4200, seed=5)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)  # no window scaling: aiotcp's window is its 4096-byte buffer
        ep.send_segment("PA", seq=ep.snd(1 + 4096), ack=ep.rcv(1), payload=b"X" * 100)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), win=4096, within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1 + 4000), ack=ep.rcv(1), payload=data[4000:4200])
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), within=(0, 0.5))
        for off in range(0, 4000, 1000):
            ep.send_segment("A", seq=ep.snd(1 + off), ack=ep.rcv(1), payload=data[off : off + 1000])
        # ACKs may come per segment; none may cover a byte past the window.
        ep.expect_segment("A", ack=ep.snd(4097), ignore=acks_below(ep.snd(4097)))
        ep.send_segment("FA", seq=ep.snd(4097), ack=ep.rcv(1))
        # Window updates (the application reads) may come first.
        ep.expect_segment(
            "A", ack=ep.snd(4098), within=(0, 0.5),
            ignore=lambda s: is_pure_ack(s) and s.ack == ep.snd(4097),
        )  # fmt: skip

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer, recv_buffer=4096)
        assert await read_all(reader, peer) == data[:4096]
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_own_zero_window_answers_probes_and_reopens_with_an_update(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.8.6.1 (MUST-36 receiver side) and §3.10.7.4 first check: while
    aiotcp's window is zero (the application does not read) a probe, empty at
    RCV.NXT-1 (Linux) or one byte at RCV.NXT (RFC 1122), is answered with
    <ACK=RCV.NXT> and WIN 0 and its byte dropped; when the application reads, a window
    update goes out (§3.8.6.2.2) and the stream completes byte-exact."""
    a, b = hosts
    data = pattern(40_000, seed=11)
    reading = threading.Event()

    def script(ep: ScriptedEndpoint) -> int:
        _, ack = handshake(ep)  # no window scaling: the window field is in bytes
        sent, edge = 0, ack.window
        for _ in range(10):  # send to the right edge until the window is shut
            while sent < edge:
                n = min(1024, edge - sent)
                ep.send_segment("A", seq=ep.snd(1 + sent), ack=ep.rcv(1),
                                payload=data[sent : sent + n])  # fmt: skip
                sent += n
            ack = ep.expect_segment("A", ack=ep.snd(1 + sent), ignore=acks_below(ep.snd(1 + sent)))
            edge = sent + ack.window
            for _ in range(10):  # window updates follow while the application still reads
                update = ep.expect(timeout=0.1)
                if update is None:
                    break
                assert is_pure_ack(update) and update.ack == ep.snd(1 + sent), update
                edge = sent + update.window
            if edge == sent:
                break
        else:
            raise AssertionError("aiotcp's window never closed")
        ep.send_segment("A", seq=ep.snd(sent), ack=ep.rcv(1))  # Linux's probe
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1 + sent), win=0, within=(0, 0.5))
        one = data[sent : sent + 1]
        ep.send_segment("PA", seq=ep.snd(1 + sent), ack=ep.rcv(1), payload=one)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1 + sent), win=0, within=(0, 0.5))
        reading.set()
        update = ep.expect_segment("A", ack=ep.snd(1 + sent), within=(0, 1.0))
        assert update.window > 0, update
        ep.send_segment("FPA", seq=ep.snd(1 + sent), ack=ep.rcv(1), payload=one)
        ep.expect_segment(
            "A", ack=ep.snd(3 + sent), within=(0, 0.5),
            ignore=lambda s: is_pure_ack(s) and s.ack == ep.snd(1 + sent),  # more updates
        )  # fmt: skip
        return sent + 1

    async def local(peer: asyncio.Future[int]) -> None:
        reader, writer = await connect(b, a, peer, recv_buffer=8192, limit=1024)
        await while_peer_runs(peer, asyncio.to_thread(reading.wait, 10))
        got = await read_all(reader, peer)
        total = await peer
        assert got == data[:total]
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_zero_window_is_probed_with_backoff_until_it_opens(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.8.6.1 (MUST-36): with a zero send window and data queued, aiotcp
    probes the window, the interval growing exponentially (RFC 1122 §4.2.2.17); no
    data goes out until a window update (§3.10.7.4 "update the window"), then the
    transfer completes byte-exact.  A probe is Linux's (no data, SEQ=SND.UNA-1) or
    RFC 1122's (one byte at SND.UNA)."""
    a, b = hosts
    data = pattern(3000, seed=6)
    probes = 4

    def script(ep: ScriptedEndpoint) -> list[float]:
        handshake(ep, win=0)
        arrivals = []
        for _ in range(probes):
            probe = ep.expect_segment("A", ack=ep.snd(1), timeout=3.0)
            assert (probe.seq, len(probe.payload)) in ((ep.rcv(0), 0), (ep.rcv(1), 1)), probe
            arrivals.append(ep.last_arrival)
            ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1), win=0)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1), win=WIN)  # the window opens
        got = bytearray()
        while len(got) < len(data):
            seg = ep.expect_segment(ack=ep.snd(1), seq=ep.rcv(1 + len(got)))
            got += seg.payload
            ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + len(got)), win=WIN)
        assert bytes(got) == data
        return arrivals

    async def local(peer: asyncio.Future[list[float]]) -> None:
        _, writer = await connect(b, a, peer, rto_min=0.1)
        writer.write(data)
        await peer
        writer.transport.abort()

    arrivals = scenario(hosts, loop_kind, script, local)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # Nominally 0.2, 0.4, 0.8 s (RTO 0.1 s doubling): each clearly longer than the last.
    assert all(later > 1.4 * earlier for earlier, later in itertools.pairwise(gaps)), gaps
    assert gaps[0] > 0.05 and gaps[-1] < 5.0, gaps


def test_window_scaling_is_applied_both_ways(hosts: tuple[Host, Host], loop_kind: LoopKind) -> None:
    """RFC 7323 §2: both SYNs carry Window Scale, so both directions shift the window
    field; windows in SYN segments are never scaled (§2.2).  aiotcp's SYN window fits
    16 bits and its first ACK offers more than 64 KiB (the 128 KiB buffer); the peer's
    SYN,ACK window of 1024 is taken as is, later fields are shifted by 7."""
    a, b = hosts
    data = pattern(5 * 1024, seed=7)

    def script(ep: ScriptedEndpoint) -> None:
        syn = ep.expect_segment("S", ack=0)
        assert syn.wscale is not None and 0 <= syn.wscale <= 14 and syn.window <= 0xFFFF
        ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(1), win=1024, mss=1024, wscale=7)
        ack = ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), within=(0, 0.5))
        assert 0xFFFF < ack.window << syn.wscale <= 131072, ack
        # The SYN,ACK window (1024, unscaled) allows exactly one segment.
        ep.expect_segment(seq=ep.rcv(1), length=1024, payload=data[:1024])
        ep.expect_silence(0.15)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + 1024), win=16)  # 16 << 7 = 2048
        ep.expect_segment(seq=ep.rcv(1 + 1024), payload=data[1024:2048], within=(0, 0.5))
        ep.expect_segment(seq=ep.rcv(1 + 2048), payload=data[2048:3072], within=(0, 0.5))
        ep.expect_silence(0.15)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + 3072), win=8)  # 1024
        ep.expect_segment(seq=ep.rcv(1 + 3072), payload=data[3072:4096], within=(0, 0.5))
        ep.expect_silence(0.15)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + 4096), win=64)  # 8192
        ep.expect_segment(seq=ep.rcv(1 + 4096), payload=data[4096:], within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + len(data)), win=64)

    # rto_min=1 s: no retransmission may blur the window-limited silences.
    scenario(hosts, loop_kind, script, sender(b, a, data, rto_min=1.0))


# ------------------------------------------------------------------ sending data


def test_lost_data_is_retransmitted_with_exponential_backoff(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 6298 §5.4-5.6: when the timer expires the earliest unacknowledged segment is
    resent unchanged and the RTO doubles; §5.2: once everything is acknowledged the
    timer stops (no more retransmissions)."""
    a, b = hosts

    def script(ep: ScriptedEndpoint) -> list[float]:
        handshake(ep)
        arrivals = []
        for _ in range(3):
            ep.expect_segment("PA", seq=ep.rcv(1), ack=ep.snd(1), payload=b"data", timeout=3.0)
            arrivals.append(ep.last_arrival)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(5))
        ep.expect_silence(0.4)  # twice the un-backed-off RTO: the timer has stopped
        return arrivals

    async def local(peer: asyncio.Future[list[float]]) -> None:
        _, writer = await connect(b, a, peer, rto_min=0.2)
        writer.write(b"data")
        await peer
        writer.transport.abort()

    arrivals = scenario(hosts, loop_kind, script, local)
    first, second = (later - earlier for earlier, later in itertools.pairwise(arrivals))
    # Nominally 0.2 s then 0.4 s (RTO clamped to rto_min after a sub-ms RTT sample).
    assert 0.15 <= first <= 1.0 and second >= 1.5 * first, (first, second)


def test_three_duplicate_acks_trigger_fast_retransmit(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 5681 §3.2: the third duplicate ACK (same ACK, no data, same window) makes
    the sender resend the missing segment at once, long before its RTO (1 s here)."""
    a, b = hosts
    data = pattern(5000, seed=12)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep, mss=1000)
        for i in range(5):
            ep.expect_segment(seq=ep.rcv(1 + 1000 * i), payload=data[1000 * i : 1000 * (i + 1)])
        for _ in range(3):  # the first segment was "lost"; the other four arrived
            ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1), win=WIN)
        ep.expect_segment(seq=ep.rcv(1), payload=data[:1000], within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + len(data)), win=WIN)

    scenario(hosts, loop_kind, script, sender(b, a, data, rto_min=1.0))


def test_keepalive_probes_an_idle_peer_and_gives_up(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.8.4 (RFC 1122 §4.2.3.6): after the idle time a keep-alive probe
    <SEQ=SND.NXT-1> (with at most one garbage octet) is sent; an answer resets the idle
    clock; ``keepalive_count`` unanswered probes, ``keepalive_interval`` apart, end the
    connection and the reader gets TimeoutError (Linux's ETIMEDOUT)."""
    a, b = hosts
    view = StackView()

    def is_probe(seg: Segment, ep: ScriptedEndpoint) -> bool:
        return seg.seq == ep.rcv(0) and len(seg.payload) <= 1 and seg.ack == ep.snd(1)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        probe = ep.expect_segment("A", within=(0.2, 0.8))  # idle 0.3 s
        assert is_probe(probe, ep), probe
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))  # "still here"
        probe = ep.expect_segment("A", within=(0.2, 0.8))  # idle again from the answer
        assert is_probe(probe, ep), probe
        probe = ep.expect_segment("A", within=(0.1, 0.6))  # unanswered: interval 0.2 s
        assert is_probe(probe, ep), probe
        for _ in range(100):
            if not view.states():
                break
            time.sleep(0.01)
        assert view.states() == []

    async def local(peer: asyncio.Future[None]) -> None:
        reader, _ = await connect(
            b, a, peer, keepalive=True, keepalive_idle=0.3, keepalive_interval=0.2,
            keepalive_count=2,
        )  # fmt: skip
        with pytest.raises(TimeoutError):
            await while_peer_runs(peer, reader.read())
        await peer

    scenario(hosts, loop_kind, script, local, view=view)


def test_nagle_holds_small_segments_while_one_is_unacknowledged(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.7.4 (SHLD-7, Nagle): while a small segment is unacknowledged, new
    small writes are held and then sent together when the ACK arrives; with
    ``nodelay`` (MUST-17: the application can disable it) they go out at once."""
    a, b = hosts
    sent_first = threading.Event()

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        ep.expect_segment("PA", seq=ep.rcv(1), payload=b"a")
        sent_first.set()
        ep.expect_silence(0.3)  # "b" and "c" wait (RTO is 1 s: no retransmission either)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(2))
        ep.expect_segment("PA", seq=ep.rcv(2), payload=b"bc", within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(4))

    async def local(peer: asyncio.Future[None]) -> None:
        _, writer = await connect(b, a, peer, rto_min=1.0, nodelay=False)
        writer.write(b"a")
        await while_peer_runs(peer, asyncio.to_thread(sent_first.wait, 5))
        writer.write(b"b")
        await asyncio.sleep(0.05)
        writer.write(b"c")
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_asyncio_api_turns_nagle_off_by_default(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """asyncio sets TCP_NODELAY on every TCP transport, so the asyncio-facing API
    defaults to ``nodelay=True``: a handler that writes a header and then a body
    sends the body at once, not after the header's (delayed) ACK, ~40 ms later
    against a Linux client."""

    def script(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"GET /\r\n")
        # A connection's first data is acknowledged at once (quick-ACK mode, as Linux).
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(8), within=(0, 0.1))
        ep.expect_segment("PA", seq=ep.rcv(1), payload=b"header\r\n", within=(0, 0.5))
        # Not acknowledged: with Nagle the body would wait for this ACK.
        ep.expect_segment("PA", seq=ep.rcv(9), payload=b"body", within=(0, 0.1))
        ep.send_segment("A", seq=ep.snd(9), ack=ep.rcv(13))

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"header\r\n")
        await asyncio.sleep(0.02)  # a handler's await between the two writes
        writer.write(b"body")

    scenario(hosts, loop_kind, script, serve=handler)


@pytest.mark.parametrize("wscale", [7, None], ids=["wscale", "no-wscale"])
def test_acks_are_delayed_but_every_second_full_segment_is_acked_at_once(
    hosts: tuple[Host, Host], loop_kind: LoopKind, wscale: int | None
) -> None:
    """RFC 5681 §4.2 / RFC 9293 §3.8.6.3 (RFC 1122 §4.2.3.2): ACKs SHOULD be delayed,
    by less than 0.5 s (here ``delayed_ack_timeout`` 0.3 s), but sent for at least every
    second full-sized segment.  Like Linux, not for a connection's first segments: those
    are acknowledged one by one (quick-ACK mode, sixteen here).  The application
    reading a segment is no reason for an early ACK unless it opens the window a lot
    (§3.8.6.2.2; Linux: twice the window), also when, without window scaling, the
    16-bit field caps the window below the buffer (a bug found here: every read sent
    an ACK advertising the same 65535)."""
    a, b = hosts
    full = link_mss(a)
    quick = 16
    data = pattern(quick + 3 * full, seed=14)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep, wscale=wscale)
        for i in range(quick):  # one byte each, each acknowledged at once
            ep.send_segment("PA", seq=ep.snd(1 + i), ack=ep.rcv(1), payload=data[i : i + 1])
            ep.expect_segment("A", ack=ep.snd(2 + i), within=(0, 0.15))
        # Then the delayed ACK.  (The gaps stay below the RTO, 0.2 s: data after a
        # longer silence is quick-ACKed again, as Linux does.)
        at = 1 + quick
        ep.send_segment("A", seq=ep.snd(at), ack=ep.rcv(1), payload=data[at - 1 : at - 1 + full])
        ep.expect_silence(0.1)  # one full segment: delayed
        at += full
        ep.send_segment("A", seq=ep.snd(at), ack=ep.rcv(1), payload=data[at - 1 : at - 1 + full])
        at += full
        ep.expect_segment("A", ack=ep.snd(at), within=(0, 0.1))  # two full ones: at once
        ep.send_segment("PA", seq=ep.snd(at), ack=ep.rcv(1), payload=data[at - 1 :])
        ep.expect_segment("A", ack=ep.snd(1 + len(data)), within=(0.2, 0.5))  # delayed

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer, delayed_ack_timeout=0.3)
        assert await while_peer_runs(peer, reader.readexactly(len(data))) == data
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_unacknowledged_data_and_fin_are_retransmitted(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.4 / §3.8.1 (and RFC 6298 §5.4): a FIN occupies a sequence number
    and is retransmitted, with the data before it and at the same sequence numbers,
    until acknowledged; its ACK then moves FIN-WAIT-1 to FIN-WAIT-2, the peer's FIN to
    TIME-WAIT."""
    a, b = hosts
    view = StackView()

    def until_fin(ep: ScriptedEndpoint, timeout: float) -> tuple[bytes, int]:
        """Payload from RCV.NXT=rcv(1) up to the FIN, and the FIN's sequence number."""
        got = bytearray()
        for _ in range(5):
            seg = ep.expect_segment(seq=ep.rcv(1 + len(got)), ack=ep.snd(1), timeout=timeout)
            got += seg.payload
            if seg.flags & FIN:
                return bytes(got), seq_sub(seg.seq + len(seg.payload), ep.rcv(0))
        raise AssertionError("no FIN")

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        assert until_fin(ep, 2.0) == (b"bye", 4)
        start = ep.mark
        assert until_fin(ep, 2.0) == (b"bye", 4)  # the RTO (0.2 s) resends both
        assert 0.1 <= ep.mark - start <= 1.5
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(5))
        ep.expect_silence(0.3)
        assert view.states() == ["FIN-WAIT-2"]
        ep.send_segment("FA", seq=ep.snd(1), ack=ep.rcv(5))
        ep.expect_segment("A", seq=ep.rcv(5), ack=ep.snd(2), within=(0, 0.5))
        assert view.states() == ["TIME-WAIT"]

    async def local(peer: asyncio.Future[None]) -> None:
        _, writer = await connect(b, a, peer, rto_min=0.2, msl=2.0)
        writer.write(b"bye")
        writer.close()
        await peer

    scenario(hosts, loop_kind, script, local, view=view)


# ------------------------------------------------------------------ closing


@pytest.mark.parametrize("rfc1337", [True, False], ids=["rfc1337", "no-rfc1337"])
def test_rst_in_time_wait(hosts: tuple[Host, Host], loop_kind: LoopKind, rfc1337: bool) -> None:
    """RFC 1337 (TIME-WAIT assassination, fix TWA-1): with ``rfc1337`` (the default) a
    RST in TIME-WAIT is ignored and the 4-tuple stays in TIME-WAIT, still re-ACKing a
    retransmitted FIN (RFC 9293 §3.10.7.4 TIME-WAIT); without it the RST closes the
    connection as RFC 9293 §3.10.7.4 second check says."""
    a, b = hosts
    view = StackView()

    def script(ep: ScriptedEndpoint) -> list[str]:
        handshake(ep)
        ep.expect_segment("FA", seq=ep.rcv(1), ack=ep.snd(1))
        ep.send_segment("FA", seq=ep.snd(1), ack=ep.rcv(2))
        ep.expect_segment("A", seq=ep.rcv(2), ack=ep.snd(2), within=(0, 0.5))
        assert view.states() == ["TIME-WAIT"]
        ep.send_segment("R", seq=ep.snd(2))
        ep.expect_silence(0.2)
        after_rst = view.states()
        if rfc1337:
            ep.send_segment("FA", seq=ep.snd(1), ack=ep.rcv(2))  # FIN again: re-ACKed
            ep.expect_segment("A", seq=ep.rcv(2), ack=ep.snd(2), within=(0, 0.5))
        return after_rst

    async def local(peer: asyncio.Future[list[str]]) -> None:
        _, writer = await connect(b, a, peer, msl=2.0, rfc1337=rfc1337)
        writer.close()
        await peer

    after_rst = scenario(hosts, loop_kind, script, local, view=view)
    assert after_rst == (["TIME-WAIT"] if rfc1337 else [])


def _server_time_wait(ep: ScriptedEndpoint, view: StackView) -> None:
    """Connect to the aiotcp server, which closes first: it ends in TIME-WAIT."""
    ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
    ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
    ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))
    ep.expect_segment("FA", seq=ep.rcv(1), ack=ep.snd(1), timeout=2.0)
    ep.send_segment("FA", seq=ep.snd(1), ack=ep.rcv(2))
    ep.expect_segment("A", seq=ep.rcv(2), ack=ep.snd(2), within=(0, 0.5))
    assert view.states() == ["LISTEN", "TIME-WAIT"]


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


def test_old_syn_in_time_wait_is_acked_and_does_not_reopen(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.4 TIME-WAIT first check (and RFC 1122 §4.2.2.13): a SYN that is
    not newer than the old incarnation (here its duplicate) is not acceptable; it is
    answered with <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK> and the 4-tuple stays in
    TIME-WAIT."""
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        _server_time_wait(ep, view)
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)  # the old SYN again
        ep.expect_segment("A", seq=ep.rcv(2), ack=ep.snd(2), within=(0, 0.5))
        assert view.states() == ["LISTEN", "TIME-WAIT"]

    scenario(hosts, loop_kind, script, view=view, serve=_close_at_once, server_options={"msl": 5.0})


def test_newer_syn_in_time_wait_opens_a_new_connection(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.6.1 / RFC 1122 §4.2.2.13 (MAY) and RFC 6191: a SYN whose sequence
    number is above the old incarnation's RCV.NXT may reopen the 4-tuple from
    TIME-WAIT; aiotcp's core decides so (``accepts_new_syn``) and Linux does it
    (``tcp_timewait_state_process``): the client gets a SYN,ACK at once."""
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        _server_time_wait(ep, view)
        ep.iss = PEER_ISN + 100_000 - (1 << 32)  # the new incarnation, past the wrap
        ep.send_segment("S", seq=ep.snd(0), win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))
        ep.expect_segment("FA", seq=ep.rcv(1), ack=ep.snd(1), timeout=2.0)

    scenario(hosts, loop_kind, script, view=view, serve=_close_at_once, server_options={"msl": 5.0})


def test_fin_wait_2_ends_after_the_timeout(hosts: tuple[Host, Host], loop_kind: LoopKind) -> None:
    """RFC 9293 §3.6 leaves FIN-WAIT-2 unbounded; like Linux's ``tcp_fin_timeout`` (and
    RFC 9293 §3.10.4's orphaned close) aiotcp ends it after ``fin_wait_2_timeout``
    when the peer stays silent.  Meanwhile the acknowledged FIN is not resent; then
    the connection leaves the table."""
    a, b = hosts
    view = StackView()
    timeout = 0.6

    def script(ep: ScriptedEndpoint) -> float:
        handshake(ep)
        ep.expect_segment("FA", seq=ep.rcv(1), ack=ep.snd(1))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(2))
        acked = ep.mark
        ep.expect_silence(timeout / 2)
        assert view.states() == ["FIN-WAIT-2"]
        deadline = acked + 3 * timeout
        while view.states() and time.monotonic() < deadline:
            time.sleep(0.02)
        return time.monotonic() - acked

    async def local(peer: asyncio.Future[float]) -> None:
        _, writer = await connect(b, a, peer, fin_wait_2_timeout=timeout)
        writer.close()
        await peer

    gone = scenario(hosts, loop_kind, script, local, view=view)
    assert 0.8 * timeout <= gone <= 2 * timeout, gone
    assert view.new_states()[-3:] == [State.FIN_WAIT_1, State.FIN_WAIT_2, State.CLOSED]


@pytest.mark.parametrize(
    "guard",
    [
        "iptables",
        "socket",
    ],
)
def test_segment_for_a_closed_connection_gets_a_rst(
    hosts: tuple[Host, Host], loop_kind: LoopKind, guard: str
) -> None:
    """RFC 9293 §3.10.7.1: once the TCB is gone (here: aiotcp aborted with its RST,
    §3.10.5, by a close with ``SO_LINGER {1, 0}`` as on Linux), a segment for the
    4-tuple is answered with <SEQ=SEG.ACK><CTL=RST>, whoever answers it: aiotcp or
    the host's kernel."""
    a, b = hosts
    view = StackView()

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        ep.expect_segment("RA", seq=ep.rcv(1), ack=ep.snd(1))  # Linux's active reset
        for _ in range(100):  # until the stack has forgotten the connection
            if not view.states():
                break
            time.sleep(0.01)
        time.sleep(0.05)
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"late")
        ep.expect_segment("R", seq=ep.rcv(1), within=(0, 0.5), timeout=0.6)

    async def local(peer: asyncio.Future[None]) -> None:
        _, writer = await connect(b, a, peer)
        linger = struct.pack("ii", 1, 0)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        writer.close()

    scenario(hosts, loop_kind, script, local, view=view, guard=guard)


# ------------------------------------------------------------------ receiving data


def test_out_of_order_data_is_sacked_and_delivered_once_in_order(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 2018 §4: each out-of-order segment triggers an immediate ACK whose first SACK
    block holds the segment just received, then the other blocks, most recent first;
    RFC 5681 §4.2: filling a hole is ACKed at once.  The bytes reach the application
    once and in order (RFC 9293 §3.10.7.4 seventh check)."""
    a, b = hosts
    data = pattern(4000, seed=10)
    cuts = {"A": (0, 1000), "B": (1000, 2000), "C": (2000, 3000), "D": (3000, 3500),
            "E": (3500, 4000)}  # fmt: skip

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep, sack_permitted=True)

        def send(name: str) -> None:
            lo, hi = cuts[name]
            ep.send_segment("PA", seq=ep.snd(1 + lo), ack=ep.rcv(1), payload=data[lo:hi])

        def block(name: str) -> tuple[int, int]:
            lo, hi = cuts[name]
            return ep.snd(1 + lo), ep.snd(1 + hi)

        send("A")
        ep.expect_segment("A", ack=ep.snd(1001), sack=[], within=(0, 0.5))
        send("C")
        ep.expect_segment("A", ack=ep.snd(1001), sack=[block("C")], within=(0, 0.5))
        send("E")
        ep.expect_segment("A", ack=ep.snd(1001), sack=[block("E"), block("C")], within=(0, 0.5))
        send("B")
        ep.expect_segment("A", ack=ep.snd(3001), sack=[block("E")], within=(0, 0.5))
        send("D")
        ep.expect_segment("A", ack=ep.snd(4001), sack=[], within=(0, 0.5))
        send("C")  # a duplicate: ACKed again, not delivered again
        ep.expect_segment("A", ack=ep.snd(4001), within=(0, 0.5))
        ep.send_segment("FA", seq=ep.snd(4001), ack=ep.rcv(1))
        ep.expect_segment("A", ack=ep.snd(4002), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await read_all(reader, peer) == data
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_fin_beyond_a_hole_waits_for_the_data_then_passive_close(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.4 eighth check: a FIN is processed only once everything before
    it has arrived (RCV.NXT reaches it): the out-of-order FIN is not ACKed early, the
    hole's arrival ACKs data and FIN together and the reader sees EOF after all bytes.
    Then the passive close of §3.6 case 1: CLOSE-WAIT, FIN, LAST-ACK, CLOSED."""
    a, b = hosts
    view = StackView()
    data = pattern(2000, seed=13)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep, sack_permitted=True)
        ep.send_segment("FPA", seq=ep.snd(1001), ack=ep.rcv(1), payload=data[1000:])
        ep.expect_segment("A", ack=ep.snd(1), within=(0, 0.5))
        assert view.states() == ["ESTABLISHED"]
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=data[:1000])
        ep.expect_segment("A", ack=ep.snd(2002), sack=[], within=(0, 0.5))
        ep.expect_segment("FA", seq=ep.rcv(1), ack=ep.snd(2002), within=(0, 2.0))
        ep.send_segment("A", seq=ep.snd(2002), ack=ep.rcv(2))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await read_all(reader, peer) == data
        assert [c["state"] for c in aiotcp.connections()] == ["CLOSE-WAIT"]
        writer.close()
        await peer

    scenario(hosts, loop_kind, script, local, view=view)
    assert view.new_states()[-3:] == [State.CLOSE_WAIT, State.LAST_ACK, State.CLOSED]


def test_segment_with_a_bad_checksum_is_dropped(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.1 (MUST-2, MUST-3): the checksum is verified on receipt and a
    segment that fails it is discarded: not ACKed, its data never delivered.  The same
    segment with a good checksum is then accepted."""
    a, b = hosts

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        good = Segment(PEER_PORT, LOCAL_PORT, ep.snd(1), ep.rcv(1), PSH | ACK, WIN, 0, b"data")
        src, dst = ip_address(ep.local[0]).packed, ip_address(ep.remote[0]).packed
        wire = bytearray(encode(good, src, dst))
        wire[16] ^= 0x5A  # checksum field
        ep.raw.send(bytes(wire), src, dst)
        ep.expect_silence(0.3)
        ep.send(good)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(5), within=(0, 0.5))
        ep.send_segment("FA", seq=ep.snd(5), ack=ep.rcv(1))
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(6), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await read_all(reader, peer) == b"data"
        await peer
        assert aiotcp.get_stack().counters["drop_bad_checksum"] == 1
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_retransmitted_data_is_reacked_and_delivered_once(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.10.7.4 first check: a segment wholly below RCV.NXT is not acceptable
    and is answered with an ACK; one that overlaps it is trimmed to the new bytes
    ("segments ... may contain data already received").  RFC 5681 §4.2: the ACK of a
    duplicate is immediate.  The application sees every byte once."""
    a, b = hosts

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"hello")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(6), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"hello")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(6), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"hello world")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(12), within=(0, 0.5))
        ep.send_segment("FA", seq=ep.snd(12), ack=ep.rcv(1))
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(13), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await read_all(reader, peer) == b"hello world"
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_urgent_data_stays_in_line(hosts: tuple[Host, Host], loop_kind: LoopKind) -> None:
    """RFC 9293 §3.8.5 / RFC 6093 §5: URG is accepted (MUST-30..32) and, as
    SO_OOBINLINE does, urgent bytes stay in the stream: nothing is lost, reordered or
    taken out of band, also with an urgent pointer past the segment."""
    a, b = hosts

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        ep.send_segment("PAU", seq=ep.snd(1), ack=ep.rcv(1), payload=b"abc!", urgent=4)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(5), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(5), ack=ep.rcv(1), payload=b"defg")
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(9), within=(0, 0.5))
        ep.send_segment("PAU", seq=ep.snd(9), ack=ep.rcv(1), payload=b"hi", urgent=1000)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(11), within=(0, 0.5))
        ep.send_segment("FA", seq=ep.snd(11), ack=ep.rcv(1))
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(12), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        assert await read_all(reader, peer) == b"abc!defghi"
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


# ------------------------------------------------------------------ options


@pytest.mark.parametrize(
    ("mss", "timestamps"),
    [(300, True), (None, False)],
    ids=["mss300-ts", "no-mss-option"],
)
def test_peer_mss_bounds_every_segment(
    hosts: tuple[Host, Host], loop_kind: LoopKind, mss: int | None, timestamps: bool
) -> None:
    """RFC 9293 §3.7.1 (MUST-14/15) and RFC 6691: the peer's MSS option bounds the
    data aiotcp sends, and TCP options count against it: payload + option bytes <= MSS
    (288 data bytes with the 12-byte timestamp option); without the option the send
    MSS is 536 over IPv4, 1220 over IPv6 (MUST-15).  The stream arrives intact."""
    a, b = hosts
    data = pattern(6000, seed=mss or 0)

    def script(ep: ScriptedEndpoint) -> list[int]:
        options: dict[str, Any] = {"mss": mss}
        syn = ep.expect_segment("S", ack=0)
        if timestamps:
            assert syn.ts_val is not None
            options.update(ts_val=1000, ts_ecr=syn.ts_val, sack_permitted=True)
        ep.send_segment("SA", seq=PEER_ISN, ack=ep.rcv(1), win=WIN, **options)
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), within=(0, 0.5))
        got = bytearray()
        sizes = []
        for _ in range(200):
            if len(got) >= len(data):
                break
            seg = ep.expect_segment(ack=ep.snd(1), seq=ep.rcv(1 + len(got)))
            sizes.append(len(seg.payload) + len(encode_options(seg)))
            got += seg.payload
            ts: dict[str, Any] = {"ts_val": 1001, "ts_ecr": seg.ts_val} if timestamps else {}
            ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1 + len(got)), win=WIN, **ts)
        assert bytes(got) == data
        return sizes

    async def local(peer: asyncio.Future[list[int]]) -> None:
        _, writer = await connect(b, a, peer)
        writer.write(data)
        await peer
        writer.transport.abort()

    sizes = scenario(hosts, loop_kind, script, local)
    assert max(sizes) == (mss or (536 if a.address6 is None else 1220)), sizes


@pytest.mark.parametrize(
    "side",
    [
        "active",
        "passive",
    ],
)
def test_advertised_mss_fits_the_link_mtu(
    hosts: tuple[Host, Host], loop_kind: LoopKind, side: str
) -> None:
    """RFC 9293 §3.7.1 / RFC 1122 §4.2.2.6 (and ``TcpOptions.advertised_mss``: "clipped
    to the route MTU"): on a 1280-byte link the MSS option says 1240 (IPv6: 1220), in the
    SYN of an active open and in the SYN,ACK of a passive one.  aiotcp drops IP fragments, so a
    larger MSS would invite segments that never arrive (A's veth drops frames above its
    MTU; the peer's own link is 1500)."""
    a, _ = hosts
    a.run(["ip", "link", "set", "dev", a.ifname, "mtu", "1280"])
    mss = 1240 if a.address6 is None else 1220

    def active(ep: ScriptedEndpoint) -> None:
        ep.expect_segment("S", mss=mss)

    def passive(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=WIN, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), mss=mss, within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        opening = asyncio.ensure_future(
            aiotcp.open_connection(
                address(hosts[1]), PEER_PORT, local_addr=(address(a), LOCAL_PORT)
            )
        )
        try:
            await while_peer_runs(peer, peer)
        finally:
            opening.cancel()

    if side == "active":
        scenario(hosts, loop_kind, active, local)
    else:
        scenario(hosts, loop_kind, passive, serve=lambda r, w: None)


def test_timestamps_are_echoed_and_paws_drops_old_segments(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 7323 §3.2: TSecr of the SYN is 0; once negotiated every segment carries the
    option.  §4.3: TSecr echoes TS.Recent, which only a segment at the left window edge
    updates (an out-of-order one does not).  §5.3 R1 (PAWS): a segment with an older
    TSval is not acceptable: it is ACKed and its data dropped.  A RST without TSopt
    still resets (§3.2)."""
    a, b = hosts
    view = StackView()
    t0 = 0xFFFFFFF0  # TSval wraps too: comparisons are modular (RFC 7323 §5.2)

    def ts(delta: int) -> int:
        return (t0 + delta) & 0xFFFFFFFF

    def script(ep: ScriptedEndpoint) -> None:
        syn = ep.expect_segment("S", ack=0, ts_ecr=0)
        assert syn.ts_val is not None
        ep.send_segment(
            "SA", seq=PEER_ISN, ack=ep.rcv(1), win=WIN, mss=1460, ts_val=ts(0), ts_ecr=syn.ts_val
        )
        ep.expect_segment("A", seq=ep.rcv(1), ack=ep.snd(1), ts_ecr=ts(0), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"aaaa", ts_val=ts(10),
                        ts_ecr=syn.ts_val)  # fmt: skip
        ep.expect_segment("A", ack=ep.snd(5), ts_ecr=ts(10), within=(0, 0.5))
        # PAWS: an old TSval (before the wrap) marks an old duplicate.
        ep.send_segment("PA", seq=ep.snd(5), ack=ep.rcv(1), payload=b"OLD!", ts_val=ts(-5),
                        ts_ecr=syn.ts_val)  # fmt: skip
        ep.expect_segment("A", ack=ep.snd(5), ts_ecr=ts(10), within=(0, 0.5))
        # Out of order: ACKed at once, TS.Recent unchanged.
        ep.send_segment("PA", seq=ep.snd(105), ack=ep.rcv(1), payload=b"zzzz", ts_val=ts(20),
                        ts_ecr=syn.ts_val)  # fmt: skip
        ep.expect_segment("A", ack=ep.snd(5), ts_ecr=ts(10), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(5), ack=ep.rcv(1), payload=b"bbbb", ts_val=ts(30),
                        ts_ecr=syn.ts_val)  # fmt: skip
        ep.expect_segment("A", ack=ep.snd(9), ts_ecr=ts(30), within=(0, 0.5))
        received = [seg for _, way, seg in ep.transcript if way == "<"]
        assert all(seg.ts_val is not None for seg in received), "a segment without TSopt"
        vals = [seg.ts_val or 0 for seg in received]
        assert all(seq_sub(y, x) >= 0 for x, y in itertools.pairwise(vals)), vals  # monotonic
        # §3.2: "A received <RST> segment MUST NOT be dropped for lack of a TSopt."
        ep.send_segment("R", seq=ep.snd(9))
        ep.expect_silence(0.2)
        assert view.states() == []

    async def local(peer: asyncio.Future[None]) -> None:
        reader, _ = await connect(b, a, peer)
        assert await while_peer_runs(peer, reader.readexactly(8)) == b"aaaabbbb"
        with pytest.raises(ConnectionResetError):
            await while_peer_runs(peer, reader.read())
        await peer

    scenario(hosts, loop_kind, script, local, view=view)


def test_each_out_of_order_segment_of_a_burst_gets_its_own_dup_ack(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 5681 §4.2: a receiver SHOULD send an immediate duplicate ACK for every
    out-of-order segment — also when they arrive together and are processed as one
    batch, or a sender without SACK could not count to three."""
    a, b = hosts
    data = pattern(5000, seed=14)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)  # no SACK: duplicate ACKs are all the sender has
        for lo in (1000, 2000, 3000, 4000):  # a burst; the first 1000 bytes "lost"
            ep.send_segment("PA", seq=ep.snd(1 + lo), ack=ep.rcv(1), payload=data[lo : lo + 1000])
        for _ in range(4):
            ep.expect_segment("A", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=data[:1000])
        ep.expect_segment("A", ack=ep.snd(5001), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        got = await while_peer_runs(peer, reader.readexactly(len(data)))
        assert got == data
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


def test_a_hole_filled_within_one_batch_gets_one_cumulative_ack(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """Two segments that reach the raw socket swapped but together (veth delivers a
    burst from two CPUs) are one batch: one cumulative ACK, no duplicate ACK whose
    SACK block would make a Linux sender retransmit at once. The loop is held
    busy while the peer sends, so both are queued before the stack drains."""
    a, b = hosts
    data = pattern(2000, seed=15)

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep, sack_permitted=True)
        ep.expect_segment("PA", seq=ep.rcv(1), payload=b"go", within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(1001), ack=ep.rcv(3), payload=data[1000:])
        ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(3), payload=data[:1000])
        ep.expect_segment("A", ack=ep.snd(2001), sack=[], within=(0, 1.0))
        ep.expect_silence(0.3)

    async def local(peer: asyncio.Future[None]) -> None:
        reader, writer = await connect(b, a, peer)
        writer.write(b"go")
        await writer.drain()
        time.sleep(0.3)  # the loop is busy: the peer's two segments queue up
        got = await while_peer_runs(peer, reader.readexactly(len(data)))
        assert got == data
        await peer
        writer.transport.abort()

    scenario(hosts, loop_kind, script, local)


class Watcher(asyncio.Protocol):
    """A protocol that takes aiotcp's two calls beyond asyncio's interface."""

    def __init__(self) -> None:
        self.urgent: list[int] = []
        self.problems: list[tuple[int, int | None]] = []
        self.data = bytearray()

    def data_received(self, data: bytes) -> None:
        self.data += data

    def urgent_data_received(self, end_offset: int) -> None:
        self.urgent.append(end_offset)

    def delivery_problem(self, retransmissions: int, soft_error: int | None) -> None:
        self.problems.append((retransmissions, soft_error))


def test_a_protocol_hears_where_urgent_data_ends(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.8.5 (MUST-32): the application is told when the urgent pointer
    advances; the bytes stay in line (RFC 6093).  The offset counts stream bytes."""
    a, b = hosts
    watcher = Watcher()

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        ep.send_segment("PAU", seq=ep.snd(1), ack=ep.rcv(1), payload=b"abc!", urgent=4)
        ep.expect_segment("A", ack=ep.snd(5), within=(0, 0.5))
        ep.send_segment("PA", seq=ep.snd(5), ack=ep.rcv(1), payload=b"defg")
        ep.expect_segment("A", ack=ep.snd(9), within=(0, 0.5))
        ep.send_segment("PAU", seq=ep.snd(9), ack=ep.rcv(1), payload=b"hi", urgent=2)
        ep.expect_segment("A", ack=ep.snd(11), within=(0, 0.5))

    async def local(peer: asyncio.Future[None]) -> None:
        transport, _ = await while_peer_runs(
            peer,
            aiotcp.create_connection(
                lambda: watcher, address(b), PEER_PORT, local_addr=(address(a), LOCAL_PORT)
            ),
        )
        await peer
        transport.abort()

    scenario(hosts, loop_kind, script, local)
    assert watcher.urgent == [4, 10] and bytes(watcher.data) == b"abc!defghi"


def test_a_protocol_hears_of_retransmissions_past_r1(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.8.3 (MUST-20): after R1 unanswered retransmissions the layers
    above are told, while the connection goes on toward R2."""
    a, b = hosts
    watcher = Watcher()

    def script(ep: ScriptedEndpoint) -> None:
        handshake(ep)
        for _ in range(3):  # the segment and two retransmissions, none acknowledged
            ep.expect_segment("PA", seq=ep.rcv(1), payload=b"data", timeout=3.0)
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(5))

    async def local(peer: asyncio.Future[None]) -> None:
        transport, _ = await while_peer_runs(
            peer,
            aiotcp.create_connection(
                lambda: watcher,
                address(b),
                PEER_PORT,
                local_addr=(address(a), LOCAL_PORT),
                rto_min=0.1,
                retries_r1=2,
            ),
        )
        transport.write(b"data")
        await peer
        assert not transport.is_closing()  # only R2 ends it
        transport.abort()

    scenario(hosts, loop_kind, script, local)
    assert watcher.problems == [(2, None)]


def test_urgent_data_written_from_the_transport_reaches_a_kernel_as_a_kernels_does(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """RFC 9293 §3.8.5 (MUST-30): ``transport.write_urgent`` is ``send(MSG_OOB)``.
    A Linux receiver (no SO_OOBINLINE) takes the last urgent byte out of band and
    the rest of the stream in order — the same from aiotcp as from a kernel sender."""
    a, b = hosts
    listener = b.listen(PEER_PORT)

    sent = threading.Event()

    def receive_one() -> tuple[bytes, bytes]:
        """The byte out of band first (reading the stream past the mark would
        discard it), once the sender is done; then the stream."""
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(10)
            sent.wait(10)
            sent.clear()
            time.sleep(0.2)  # the last segments arrive
            oob = conn.recv(1, socket.MSG_OOB)
            data = bytearray()
            while chunk := conn.recv(65536):
                data += chunk
            return bytes(data), oob

    def kernel_client() -> None:
        with socket.create_connection((address(b), PEER_PORT)) as s:
            s.sendall(b"hello")
            s.send(b"!", socket.MSG_OOB)
            s.sendall(b"tail")

    async def aiotcp_client() -> None:
        _, writer = await aiotcp.open_connection(address(b), PEER_PORT)
        writer.write(b"hello")
        writer.transport.write_urgent(b"!")  # type: ignore[attr-defined]
        writer.write(b"tail")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            result = pool.submit(b.call, receive_one)
            a.call(kernel_client)
            sent.set()
            from_kernel = result.result(timeout=20)
            result = pool.submit(b.call, receive_one)
            with a.entered():
                run(aiotcp_client, loop_kind)
            sent.set()
            from_aiotcp = result.result(timeout=20)
    finally:
        listener.close()
    assert from_kernel == (b"hellotail", b"!")
    assert from_aiotcp == from_kernel
