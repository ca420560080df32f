"""aiotcp over IPv6 against the kernel's TCP, both directions, on both loops.

The hosts have unique-local addresses (``fd00:198:18::1`` and ``::2``) besides
their IPv4 ones.  A listener with no host takes both families on one port, as a
kernel dual-stack socket does.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Iterator

import pytest

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import (
    Host,
    kernel_echo_server,
    kernel_sink,
    pattern,
    require_root,
    two_hosts,
)

pytestmark = pytest.mark.root

PORT = 7400


@pytest.fixture
def hosts6() -> Iterator[tuple[Host, Host]]:
    require_root()
    with two_hosts("s6", ipv6=True) as pair:
        yield pair


def test_client_echo_over_ipv6(hosts6: tuple[Host, Host], loop_kind: LoopKind) -> None:
    a, b = hosts6
    assert b.address6 is not None

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(b.address6, PORT)
        assert writer.get_extra_info("peername") == (b.address6, PORT, 0, 0)
        assert writer.get_extra_info("sockname")[0] == a.address6
        assert writer.get_extra_info("socket").family == socket.AF_INET6
        for i in range(20):
            line = f"line {i}\n".encode()
            writer.write(line)
            assert await reader.readline() == line
        writer.close()
        await writer.wait_closed()

    with kernel_echo_server(b, PORT), a.entered():
        run(main, loop_kind)


def test_client_bulk_over_ipv6_is_byte_exact(
    hosts6: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    a, b = hosts6
    size = 8 << 20
    data = pattern(size, seed=6)

    async def main() -> None:
        _, writer = await aiotcp.open_connection(b.address6, PORT)
        for i in range(0, size, 65536):
            writer.write(data[i : i + 65536])
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    with kernel_sink(b, PORT) as sink, a.entered():
        run(main, loop_kind)
        assert sink.read_result() == (size, hashlib.sha256(data).hexdigest())


@pytest.mark.parametrize("guard", ["iptables", "socket"])
def test_a_listener_with_no_host_serves_both_families(
    hosts6: tuple[Host, Host], loop_kind: LoopKind, guard: str
) -> None:
    """Kernel clients over IPv6 and IPv4 to the same port; each echo byte-exact."""
    a, b = hosts6
    data = pattern(1 << 20, seed=9)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.close()

    def kernel_client(address: str) -> tuple[bytes, tuple[str, ...]]:
        with socket.create_connection((address, PORT), timeout=10) as s:
            peer = s.getpeername()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := s.recv(65536):
                got += chunk
            return bytes(got), peer

    async def main() -> list[tuple[bytes, tuple[str, ...]]]:
        server = await aiotcp.start_server(echo, port=PORT)
        results = [
            await asyncio.to_thread(b.call, kernel_client, str(address))
            for address in (a.address6, a.address)
        ]
        server.close()
        return results

    with a.entered():
        results = run(main, loop_kind, guard=guard)
    assert [(got == data, peer[0]) for got, peer in results] == [
        (True, a.address6),
        (True, a.address),
    ]
