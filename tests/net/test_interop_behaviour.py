"""Kernel interop beyond plain transfers: keepalive, flow control, real programs,
scale, and the guard's promise that no kernel RST reaches the wire."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import subprocess
import threading

import pytest

import aiotcp
from aiotcp.testing.capture import capture
from aiotcp.testing.impair import iptables_drop
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_echo_server, pattern, wait_listening

PORT = 7000


def test_keepalive_finds_a_silent_peer(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """Probes are answered while the peer lives; once it goes silent the connection
    is dropped after ``keepalive_count`` unanswered probes (TimeoutError)."""
    a, b = family_hosts
    ka = {"keepalive": True, "keepalive_idle": 0.3, "keepalive_interval": 0.2, "keepalive_count": 3}

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT, **ka)
        await asyncio.sleep(1.0)  # idle: probes go out and are answered
        info = writer.get_extra_info("aiotcp")
        assert info.state == "ESTABLISHED"
        assert info.counters["keepalive_probes"] >= 2
        with iptables_drop(b, probability=1.0):  # B hears nothing from now on
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            with pytest.raises(TimeoutError):
                await reader.read()
            assert loop.time() - t0 < 0.3 + 3 * 0.2 + 1.0
        writer.close()

    with kernel_echo_server(b, PORT), a.entered():
        run(main, loop_kind)


def test_drain_waits_while_the_kernel_peer_does_not_read(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    listener = b.listen(PORT)
    accepted: list[socket.socket] = []
    go = threading.Event()
    received = hashlib.sha256()

    def slow_reader() -> None:
        conn, _ = listener.accept()
        accepted.append(conn)
        go.wait(20)
        while data := conn.recv(1 << 20):
            received.update(data)

    data = pattern(16 * 1024 * 1024, seed=2)

    async def main() -> None:
        _, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        transport = writer.transport
        offset, blocked = 0, False
        while offset < len(data):  # until drain() really blocks: the peer's buffer is full
            writer.write(data[offset : offset + 65536])
            offset += 65536
            try:
                await asyncio.wait_for(writer.drain(), 0.5)
            except TimeoutError:
                blocked = True
                break
        assert blocked, "drain() never waited although the peer read nothing"
        assert transport.get_write_buffer_size() > 16 * 1024  # above the low-water mark
        go.set()  # the peer reads: the window opens, drain() returns
        writer.write(data[offset:])
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    t = threading.Thread(target=slow_reader, daemon=True)
    t.start()
    with listener, a.entered():
        run(main, loop_kind)
    t.join(20)
    for conn in accepted:
        conn.close()
    assert received.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_slow_reader_closes_the_window_and_loses_nothing(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """The server does not read for a while: StreamReader pauses the transport,
    aiotcp's receive buffer fills and the advertised window goes to zero."""
    a, b = family_hosts
    data = pattern(4 * 1024 * 1024, seed=4)
    windows: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1.0)
        windows.append(writer.get_extra_info("aiotcp").rcv_wnd)
        got = await reader.read()
        writer.write(hashlib.sha256(got).hexdigest().encode())
        await writer.drain()
        writer.close()

    def client() -> bytes:
        with socket.create_connection((a.address_of(family), PORT), timeout=20) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            return s.recv(100)

    async def main() -> bytes:
        async with await aiotcp.start_server(handler, port=PORT):
            return await asyncio.to_thread(b.call, client)

    with a.entered():
        digest = run(main, loop_kind)
    assert digest == hashlib.sha256(data).hexdigest().encode()
    assert windows == [0]


def test_socat_both_ways(family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str) -> None:
    """socat as a kernel client of an aiotcp server, and as a kernel server for aiotcp."""
    a, b = family_hosts
    data = pattern(1_000_000, seed=9)
    # socat's addresses: TCP6 and brackets for IPv6.
    tcp, a_host = ("TCP", a.address) if family == "ipv4" else ("TCP6", f"[{a.address6}]")

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def main() -> None:
        async with await aiotcp.start_server(echo, port=PORT):
            out = await asyncio.to_thread(
                b.run,
                ["socat", "-t", "5", "-", f"{tcp}:{a_host}:{PORT}"],
                input=data,
                text=False,
            )
            assert out.stdout == data
        sink = b.popen(
            ["socat", "-u", f"{tcp}-LISTEN:{PORT + 1},reuseaddr", "STDOUT"], stdout=subprocess.PIPE
        )
        await asyncio.to_thread(wait_listening, b, PORT + 1)
        _, writer = await aiotcp.open_connection(b.address_of(family), PORT + 1)
        output = asyncio.ensure_future(asyncio.to_thread(sink.communicate, None, 20))
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        got, _ = await output
        assert got == data

    with a.entered():
        run(main, loop_kind)


def test_200_concurrent_connections_with_no_kernel_rst_on_the_wire(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    n = 200

    async def one(i: int) -> bool:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        msg = pattern(2000, seed=i)
        writer.write(msg)
        ok = await reader.readexactly(len(msg)) == msg
        writer.close()
        await writer.wait_closed()
        return ok

    async def main() -> None:
        assert all(await asyncio.gather(*(one(i) for i in range(n))))
        await asyncio.sleep(0.3)
        assert {c["state"] for c in aiotcp.connections()} <= {"TIME-WAIT"}
        assert len(aiotcp.connections()) == n

    with kernel_echo_server(b, PORT), capture(b, f"tcp port {PORT}") as cap, a.entered():
        run(main, loop_kind, msl=0.5)
    segments = cap.segments(PORT)
    assert cap.kernel_drops == 0
    assert sum(1 for s in segments if s.flags == "S") >= n
    assert not [s for s in segments if "R" in s.flags], "a RST reached the wire"
    for command in ("iptables", "ip6tables"):
        assert "AIOTCP" not in a.run([command, "-S"]).stdout, "the guard left rules behind"


def test_the_hosts_firewall_applies_to_aiotcp(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """A filter rule in aiotcp's host (here: refuse one client address) stops that
    client's segments before aiotcp, as it would before the kernel's TCP, over both
    families: aiotcp receives behind netfilter's INPUT hook.  The client's connect
    times out (its SYNs vanish) and no connection appears."""
    a, b = family_hosts
    tool = "ip6tables" if family == "ipv6" else "iptables"
    a.run([tool, "-I", "INPUT", "-s", b.address_of(family), "-p", "tcp",
           "--dport", str(PORT), "-j", "DROP"])  # fmt: skip

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.read(100))
        writer.close()

    def kernel_client() -> str:
        try:
            with socket.create_connection((a.address_of(family), PORT), timeout=1.5):
                return "connected"
        except TimeoutError:
            return "timed out"

    async def main() -> tuple[str, int]:
        server = await aiotcp.start_server(echo, port=PORT)
        outcome = await asyncio.to_thread(b.call, kernel_client)
        seen = aiotcp.get_stack().counters["rx_packets"]
        server.close()
        return outcome, seen

    with a.entered():
        outcome, seen = run(main, loop_kind)
    assert (outcome, seen) == ("timed out", 0)
