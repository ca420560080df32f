"""aiotcp against the Linux kernel's TCP, both directions, on both event loops.

Host A runs aiotcp (the test thread is moved into A's namespace, so the stack's
raw socket, guard and reservations live there); host B runs plain kernel sockets
in their own processes or threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import struct
import threading

import pytest

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_echo_server, kernel_sink, kernel_source, pattern

PORT = 7000
SILENT = {"ipv4": "198.18.0.77", "ipv6": "fd00:198:18::77"}
"""On the link, but no host there: SYNs (or neighbour solicitations) go unanswered."""
SIZE = 50 * 1024 * 1024  # the issue asks for 50 MB each direction


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- aiotcp client


def test_client_echo_roundtrip(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    peer = b.address_of(family)
    # asyncio's addresses: (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6.
    peername = (peer, PORT) if family == "ipv4" else (peer, PORT, 0, 0)

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(peer, PORT)
        assert writer.get_extra_info("peername") == peername
        assert writer.get_extra_info("sockname")[0] == a.address_of(family)
        assert writer.get_extra_info("aiotcp").state == "ESTABLISHED"
        assert writer.get_extra_info("no such key", "default") == "default"
        for i in range(20):
            line = f"line {i}\n".encode()
            writer.write(line)
            assert await reader.readline() == line
        writer.close()
        await writer.wait_closed()

    with kernel_echo_server(b, PORT), a.entered():
        run(main, loop_kind)


def test_client_sends_bulk_to_kernel_byte_exact(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    data = pattern(SIZE, seed=1)

    async def main() -> None:
        _, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        for i in range(0, len(data), 65536):
            writer.write(data[i : i + 65536])
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    with kernel_sink(b, PORT) as sink, a.entered():
        run(main, loop_kind)
        assert sink.read_result() == (SIZE, sha(data))


def test_client_receives_bulk_from_kernel_byte_exact(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts

    async def main() -> bytes:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        got = await reader.read()  # to EOF: the kernel source half-closes
        writer.close()
        await writer.wait_closed()
        return got

    with kernel_source(b, PORT, SIZE), a.entered():
        got = run(main, loop_kind)
    assert len(got) == SIZE and sha(got) == sha(pattern(SIZE))


def test_client_half_close_then_keeps_reading(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """write_eof() sends FIN; the kernel echo server still answers, then closes."""
    a, b = family_hosts

    async def main() -> bytes:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        writer.write(b"x" * 100000)
        assert writer.can_write_eof()
        writer.write_eof()
        got = await reader.read()
        assert reader.at_eof()
        writer.close()
        await writer.wait_closed()
        return got

    with kernel_echo_server(b, PORT), a.entered():
        assert run(main, loop_kind) == b"x" * 100000


def test_refused_port_raises_connection_refused(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    a, b = family_hosts

    async def main() -> None:
        with pytest.raises(ConnectionRefusedError):
            await aiotcp.open_connection(b.address_of(family), 9)

    with a.entered():
        run(main, loop_kind)


def test_kernel_abort_gives_connection_reset(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    a, b = family_hosts
    listener = b.listen(PORT)

    def abort_first_client() -> None:
        conn, _ = listener.accept()
        conn.recv(100)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # RST

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        writer.write(b"hi")
        with pytest.raises(ConnectionResetError):
            await reader.read()
        writer.close()

    t = threading.Thread(target=abort_first_client, daemon=True)
    t.start()
    with listener, a.entered():
        run(main, loop_kind)
    t.join(5)


def test_unreachable_peer_times_out_after_syn_retries(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    a, _ = family_hosts

    async def main() -> float:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(TimeoutError):
            await aiotcp.open_connection(SILENT[family], PORT, syn_retries=2, rto_initial=0.2)
        return loop.time() - t0

    with a.entered():
        elapsed = run(main, loop_kind)
    assert 0.2 + 0.4 <= elapsed < 5  # 0.2 + 0.4 + 0.8 s with exponential backoff


def test_cancelled_connect_aborts_and_frees_its_port(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """asyncio.wait_for around connect (the usual way to bound it): the SYN-SENT
    connection is aborted, leaves the table and gives its port back."""
    a, _ = family_hosts

    async def main() -> tuple[int, int, int]:
        stack = aiotcp.stack.get_stack()
        before = len(stack.guard.reservations)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(aiotcp.open_connection(SILENT[family], PORT), 0.3)
        during = len(stack.connections)
        for _ in range(100):
            if not stack.connections:
                break
            await asyncio.sleep(0.01)
        return during, len(stack.connections), len(stack.guard.reservations) - before

    with a.entered():
        during, after, ports_kept = run(main, loop_kind)
    assert (after, ports_kept) == (0, 0), (during, after, ports_kept)


# ---------------------------------------------------------------- aiotcp server


async def echo_handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def kernel_echo_client(host: Host, addr: str, payload: bytes) -> bytes:
    def client() -> bytes:
        with socket.create_connection((addr, PORT), timeout=20) as s:
            out = bytearray()

            def reader() -> None:
                while chunk := s.recv(65536):
                    out.extend(chunk)

            t = threading.Thread(target=reader)
            t.start()
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            t.join(20)
            return bytes(out)

    return host.call(client)


def test_server_echoes_kernel_client_byte_exact(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    payload = pattern(2 * 1024 * 1024, seed=7)

    async def main() -> bytes:
        server = await aiotcp.start_server(echo_handler, port=PORT)
        async with server:
            address = a.address_of(family)
            return await asyncio.to_thread(kernel_echo_client, b, address, payload)

    with a.entered():
        got = run(main, loop_kind)
    assert sha(got) == sha(payload)


def test_curl_fetches_from_aiotcp_http_server(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    body = pattern(300000, seed=3)
    # curl -4 / -6, with an IPv6 address in brackets.
    host = a.address_of(family) if family == "ipv4" else f"[{a.address_of(family)}]"
    version = "-4" if family == "ipv4" else "-6"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main() -> str:
        async with await aiotcp.start_server(handler, port=8080):
            proc = await asyncio.to_thread(
                b.run,
                ["curl", version, "-sS", "--max-time", "20", f"http://{host}:8080/"],
                text=False,
            )
            return sha(proc.stdout)

    with a.entered():
        assert run(main, loop_kind) == sha(body)


def test_many_concurrent_connections_then_table_empties(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    a, b = family_hosts
    n = 50

    async def one(i: int) -> bytes:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        msg = f"client {i}\n".encode() * 100
        writer.write(msg)
        got = await reader.readexactly(len(msg))
        writer.close()
        await writer.wait_closed()
        return got

    async def main() -> None:
        results = await asyncio.gather(*(one(i) for i in range(n)))
        assert all(r == f"client {i}\n".encode() * 100 for i, r in enumerate(results))
        await asyncio.sleep(0.3)
        states = [c["state"] for c in aiotcp.connections()]
        assert len(states) == n and set(states) <= {"TIME-WAIT", "FIN-WAIT-2"}

    with kernel_echo_server(b, PORT), a.entered():
        run(main, loop_kind)


def test_time_wait_expires_after_2msl(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """TIME-WAIT lasts 2·MSL, kept by the stack's one timer: the connection holds no
    timer of its own (it is parked, like a Linux timewait socket) and its port is held."""
    a, b = family_hosts

    async def main() -> None:
        stack = aiotcp.stack.get_stack()
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT, msl=0.25)
        port = writer.get_extra_info("sockname")[1]
        writer.write(b"ping\n")
        await reader.readline()
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        assert [c["state"] for c in aiotcp.connections()] == ["TIME-WAIT"]
        (driver,) = stack.connections.values()
        assert driver.parked and driver._timer is None  # the table's one timer keeps 2MSL
        assert stack.guard.owns(port)
        await asyncio.sleep(0.6)
        assert aiotcp.connections() == []
        assert not stack.guard.owns(port)

    with kernel_echo_server(b, PORT), a.entered():
        run(main, loop_kind)


def test_server_bulk_both_directions_with_a_kernel_client(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """Kernel client sends SIZE bytes and half-closes; the aiotcp server answers with
    their SHA-256 and then SIZE bytes of its own (half-close in the other direction)."""
    a, b = family_hosts
    upload, download = pattern(SIZE, seed=11), pattern(SIZE, seed=12)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        h = hashlib.sha256()
        while chunk := await reader.read(1 << 20):
            h.update(chunk)
        writer.write(h.hexdigest().encode())
        for i in range(0, SIZE, 1 << 20):
            writer.write(download[i : i + (1 << 20)])
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    def client() -> tuple[bytes, bytes]:
        with socket.create_connection((a.address_of(family), PORT), timeout=60) as s:
            s.sendall(upload)
            s.shutdown(socket.SHUT_WR)
            got = bytearray()
            while chunk := s.recv(1 << 20):
                got += chunk
        return bytes(got[:64]), bytes(got[64:])

    async def main() -> tuple[bytes, bytes]:
        async with await aiotcp.start_server(handler, port=PORT):
            return await asyncio.to_thread(b.call, client, timeout=120)

    with a.entered():
        digest, got = run(main, loop_kind, timeout=120)
    assert digest == sha(upload).encode()
    assert len(got) == SIZE and sha(got) == sha(download)


def test_closing_the_stack_resets_connections_and_wakes_their_readers(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    a, b = family_hosts

    async def main() -> None:
        stack = aiotcp.get_stack()
        reader, _ = await aiotcp.open_connection(b.address_of(family), PORT)
        pending = asyncio.ensure_future(reader.read())
        await asyncio.sleep(0.05)
        stack.close()
        with pytest.raises(ConnectionAbortedError):
            await asyncio.wait_for(pending, 2)
        with pytest.raises(RuntimeError, match="closed"):
            await aiotcp.open_connection(b.address_of(family), PORT, stack=stack)

    with kernel_echo_server(b, PORT), a.entered():
        run(main, loop_kind)
