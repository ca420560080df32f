"""A listener of both families against the kernel's clients (the tests that run
over either family are parametrized where they live, ``family_hosts``).

The hosts have unique-local addresses (``fd00:198:18::1`` and ``::2``) besides
their IPv4 ones.  A listener with no host takes both families on one port, as a
kernel dual-stack socket does.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import (
    Host,
    pattern,
)

pytestmark = pytest.mark.root

PORT = 7400


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
