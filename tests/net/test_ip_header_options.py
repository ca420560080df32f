"""Per-connection IP header fields: DSCP (IP_TOS, IPv6's IPV6_TCLASS) and TTL
(IP_TTL, IPv6's hop limit IPV6_UNICAST_HOPS), as the kernel's TCP sockets take them
(RFC 9293 MUST-48 and MUST-49).

B watches the wire with a packet socket of its own, so what is checked is what
left A: the handshake (built by the kernel from the raw socket's control
messages) and the data (frames aiotcp builds for AF_PACKET) alike.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import pytest

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_echo_server

PORT = 7200
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
EF = 0xB8  # DSCP 46, expedited forwarding (RFC 3246), as the TOS byte
# The (level, option) of each field, by family.
TOS = {
    "ipv4": (socket.IPPROTO_IP, socket.IP_TOS),
    "ipv6": (socket.IPPROTO_IPV6, socket.IPV6_TCLASS),
}
TTL = {
    "ipv4": (socket.IPPROTO_IP, socket.IP_TTL),
    "ipv6": (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS),
}


def header_fields(ip: bytes) -> tuple[int, int, int, bytes]:
    """(TOS or traffic class, TTL or hop limit, protocol, the rest) of an IP packet."""
    if ip[0] >> 4 == 6:
        return ((ip[0] & 0x0F) << 4) | (ip[1] >> 4), ip[7], ip[6], ip[40:]
    return ip[1], ip[8], ip[9], ip[(ip[0] & 0x0F) * 4 :]


@contextmanager
def wire_watch(host: Host, family: str) -> Iterator[list[tuple[int, int, int, int]]]:
    """(TOS, TTL, TCP source port, TCP flags) of every ``family`` TCP packet
    ``host`` receives while the block runs, filled in when it ends."""
    proto = socket.htons(ETH_P_IP if family == "ipv4" else ETH_P_IPV6)
    sock = host.call(socket.socket, socket.AF_PACKET, socket.SOCK_RAW, proto)
    seen: list[tuple[int, int, int, int]] = []
    try:
        sock.bind((host.ifname, 0))
        sock.setblocking(False)
        yield seen
        while True:
            try:
                frame, meta = sock.recvfrom(65536)
            except BlockingIOError:
                break
            if meta[2] == socket.PACKET_OUTGOING:
                continue
            tos, ttl, proto, tcp = header_fields(frame[14:])
            if proto != socket.IPPROTO_TCP:
                continue
            sport, _, _, _, _, flags = struct.unpack_from("!HHIIBB", tcp)
            seen.append((tos, ttl, sport, flags))
    finally:
        sock.close()


async def close(writer: asyncio.StreamWriter) -> int:
    """Close, and return the local port the connection had."""
    port: int = writer.get_extra_info("sockname")[1]
    writer.close()
    await writer.wait_closed()
    return port


def watched(
    a: Host, b: Host, family: str, main: Callable[[], Awaitable[int]], loop_kind: LoopKind
) -> list[tuple[int, int]]:
    """Run ``main`` on A against B's echo server; the DS bits and TTL of each
    packet B received from the port ``main`` returns."""
    with kernel_echo_server(b, PORT), wire_watch(b, family) as seen, a.entered():
        port = run(main, loop_kind)
    return [(tos & 0xFC, ttl) for tos, ttl, sport, _ in seen if sport == port]


def read_default_ttl(family: str) -> str:
    """The kernel's default TTL or hop limit in the calling thread's namespace."""
    name = "ipv4/ip_default_ttl" if family == "ipv4" else "ipv6/conf/all/hop_limit"
    with open(f"/proc/sys/net/{name}") as f:
        return f.read()


def test_tos_and_ttl_given_at_connect_mark_every_segment(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts

    async def main() -> int:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT, tos=EF, ttl=7)
        sock = writer.get_extra_info("socket")
        assert sock.getsockopt(*TOS[family]) == EF
        assert sock.getsockopt(*TTL[family]) == 7
        for size in (10, 200_000):  # one segment, then GSO super-segments
            writer.write(b"x" * size)
            await reader.readexactly(size)
        return await close(writer)

    ours = watched(a, b, family, main, loop_kind)
    assert len(ours) >= 5  # handshake, data (GSO frames arrive whole on veth), FIN
    assert set(ours) == {(EF, 7)}


def test_setsockopt_on_a_live_connection_changes_the_next_segments(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """What libraries do: ``get_extra_info('socket').setsockopt(IP_TOS, ...)``."""
    a, b = family_hosts

    async def main() -> int:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        sock = writer.get_extra_info("socket")
        default_ttl = sock.getsockopt(*TTL[family])
        assert default_ttl == int(await asyncio.to_thread(a.call, read_default_ttl, family))
        writer.write(b"before")
        await reader.readexactly(6)
        sock.setsockopt(*TOS[family], EF | 0x03)  # ECN bits: TCP's
        sock.setsockopt(*TTL[family], 9)
        assert sock.getsockopt(*TOS[family]) == EF
        with pytest.raises(OSError):
            sock.setsockopt(*TTL[family], 256)
        writer.write(b"after!")
        await reader.readexactly(6)
        sock.setsockopt(*TTL[family], -1)  # back to the default
        assert sock.getsockopt(*TTL[family]) == default_ttl
        return await close(writer)

    ours = watched(a, b, family, main, loop_kind)
    assert ours[0] == (0, 64)  # the SYN
    assert (EF, 9) in ours and ours[-1] == (EF, 64)  # the FIN exchange: TTL back to default


def test_a_listeners_tos_and_ttl_carry_to_its_syn_ack_and_connections(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts

    async def main() -> None:
        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()

        server = await aiotcp.start_server(echo, port=PORT, tos=EF, ttl=5)

        def kernel_client() -> None:
            with socket.create_connection((a.address_of(family), PORT), timeout=5) as s:
                s.sendall(b"hi")
                assert s.recv(100) == b"hi"

        await asyncio.to_thread(b.call, kernel_client)
        server.close()

    with wire_watch(b, family) as seen, a.entered():
        run(main, loop_kind)
    ours = [(tos & 0xFC, ttl, flags) for tos, ttl, sport, flags in seen if sport == PORT]
    assert ours and {(tos, ttl) for tos, ttl, _ in ours} == {(EF, 5)}
    assert any(flags & 0x12 == 0x12 for _, _, flags in ours)  # the SYN-ACK among them
