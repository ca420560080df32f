"""The packet-level demo: one TCP connection to the Linux kernel, segment by segment.

Host A (198.18.0.1) speaks TCP through aiotcp's raw socket, scripted by hand; host
B (198.18.0.2) runs a plain kernel echo server.  Every segment is printed the way
the tutorials show tcpdump output, with the step it belongs to: the three-way
handshake with a random ISN, one request echoed back, and the four-way close.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from aiotcp.core.segment import ACK, FIN, PSH, RST, SYN, Segment
from aiotcp.core.seq import seq_add
from aiotcp.io.guards import GuardKind
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.netns import Host
from aiotcp.testing.scripted import ScriptedEndpoint

WINDOW = 64240
MSS = {"ipv4": 1460, "ipv6": 1440}
"""A 1500-byte Ethernet MTU less the IP and TCP headers (IPv6's is 20 bytes longer)."""


@dataclass
class ExchangeResult:
    """What a scripted exchange saw, for the demo's summary and the smoke test."""

    isn: int = 0
    peer_isn: int = 0
    echoed: bytes = b""
    closed: bool = False
    rst_received: bool = False
    segments: list[Segment] = field(default_factory=list)


class ExchangeError(RuntimeError):
    pass


def scripted_echo_exchange(
    raw: RawSocket,
    local: tuple[str, int],
    remote: tuple[str, int],
    payload: bytes,
    *,
    say: Callable[[str], None] = lambda line: None,
    timeout: float = 3.0,
    mss: int = MSS["ipv4"],
) -> ExchangeResult:
    """Open a connection by hand, send ``payload``, read the echo, close both ways."""
    ep = ScriptedEndpoint(raw, local, remote, log=lambda line: say("    " + line))
    result = ExchangeResult(isn=secrets.randbits(32))
    iss = result.isn

    def expect(what: str, match: Callable[[Segment], bool]) -> Segment:
        seg = ep.expect(lambda s: bool(s.flags & RST) or match(s), timeout)
        if seg is None:
            raise ExchangeError(f"timed out waiting for {what}")
        if seg.flags & RST:
            result.rst_received = True
            raise ExchangeError(f"connection reset by peer while waiting for {what}")
        return seg

    say(f"1. SYN: A asks to connect and announces its random initial sequence number x={iss}")
    ep.send(Segment(seq=iss, flags=SYN, window=WINDOW, mss=mss))
    synack = expect("SYN-ACK", lambda s: s.flags & (SYN | ACK) == SYN | ACK)
    if synack.ack != seq_add(iss, 1):
        raise ExchangeError(f"SYN-ACK acknowledges {synack.ack}, expected x+1={seq_add(iss, 1)}")
    irs = result.peer_isn = synack.seq
    say(f"2. SYN-ACK: B accepts with its own ISN y={irs} and ack=x+1={synack.ack}")
    snd_nxt, rcv_nxt = seq_add(iss, 1), seq_add(irs, 1)
    say(f"3. ACK: A confirms y+1={rcv_nxt}; both sides are ESTABLISHED")
    ep.send(Segment(seq=snd_nxt, ack=rcv_nxt, flags=ACK, window=WINDOW))

    say(f"Data: A sends {len(payload)} bytes; B's kernel echoes them back")
    ep.send(Segment(seq=snd_nxt, ack=rcv_nxt, flags=PSH | ACK, window=WINDOW, payload=payload))
    snd_nxt = seq_add(snd_nxt, len(payload))
    while len(result.echoed) < len(payload):
        seg = expect("the echo", lambda s: len(s.payload) > 0)
        if seg.seq == rcv_nxt:
            result.echoed += bytes(seg.payload)
            rcv_nxt = seq_add(rcv_nxt, len(seg.payload))
        ep.send(Segment(seq=snd_nxt, ack=rcv_nxt, flags=ACK, window=WINDOW))

    say("Close: A sends FIN (FIN_WAIT_1); B acknowledges it, then closes its side too")
    ep.send(Segment(seq=snd_nxt, ack=rcv_nxt, flags=FIN | ACK, window=WINDOW))
    snd_nxt = seq_add(snd_nxt, 1)
    expect("B's FIN", lambda s: bool(s.flags & FIN) and s.seq == rcv_nxt)
    rcv_nxt = seq_add(rcv_nxt, 1)
    say("A acknowledges B's FIN and enters TIME_WAIT; B is CLOSED")
    ep.send(Segment(seq=snd_nxt, ack=rcv_nxt, flags=ACK, window=WINDOW))
    result.closed = True
    result.segments = ep.received
    return result


def run_handshake_demo(
    a: Host,
    b: Host,
    say: Callable[[str], None] = print,
    *,
    guard_kind: GuardKind = "iptables",
    family: str = "ipv4",
) -> int:
    """The exchange between two prepared hosts. Returns an exit code."""
    from aiotcp.io.guards import guarded_raw_socket
    from aiotcp.testing.netns import kernel_echo_server

    payload = b"hello from aiotcp\n"
    port = 7
    with kernel_echo_server(b, port):
        here, there = a.address_of(family), b.address_of(family)
        say(
            f"Host A {here} (aiotcp, raw socket)  <-- veth -->  "
            f"Host B {there} (Linux kernel echo server, port {port})"
        )
        with a.entered(), guarded_raw_socket(guard_kind) as (raw, [local_port]):
            say(
                f"aiotcp owns port {local_port}; "
                f"the {guard_kind} guard keeps the kernel from resetting it"
            )
            say("")
            try:
                result = scripted_echo_exchange(
                    raw, (here, local_port), (there, port), payload, say=say, mss=MSS[family]
                )
            except ExchangeError as exc:
                say(f"FAILED: {exc}")
                return 1
    say("")
    ok = result.echoed == payload
    say(f"Echo verified: {ok} ({result.echoed!r}); connection closed cleanly: {result.closed}")
    say(f"RST seen from the peer: {result.rst_received}")
    return 0 if ok and result.closed and not result.rst_received else 1
