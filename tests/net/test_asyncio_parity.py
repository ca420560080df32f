"""aiotcp's asyncio API behaves as asyncio over the kernel does, against real peers.

Each test is a case where a program written for asyncio noticed a difference:
data that arrived before a reset, Nagle's algorithm, a restart on a port in
TIME-WAIT, a close with unread input.
"""

from __future__ import annotations

import asyncio
import errno
import socket

import pytest

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import REFUSAL, Host, kernel_refuser

PORT = 7000


class Recorder(asyncio.Protocol):
    """Writes a request on connect and records what the transport reports."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(b"PING\r\n")  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.events.append(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(exc)
        self.lost.set_result(None)


def test_a_reply_sent_just_before_a_reset_is_read_then_the_reset_raised(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """A kernel server answers and closes with the request unread: its reply, then a
    RST some 50 µs later.  Linux returns the reply to a read and ECONNRESET to the
    next; so must aiotcp, whether the reader waits or reads after both arrived."""
    a, b = family_hosts
    peer = b.address_of(family)

    async def main() -> None:
        for attempt in range(20):
            reader, writer = await aiotcp.open_connection(peer, PORT)
            writer.write(b"PING\r\n")
            if attempt % 2:
                await asyncio.sleep(0.05)  # the reply and the reset are both here
            assert await reader.readline() == REFUSAL
            with pytest.raises(ConnectionResetError) as raised:
                await reader.read(100)
            assert raised.value.errno == errno.ECONNRESET
            writer.close()

        # A protocol sees what asyncio's transports show it: the data, then the reset.
        _, proto = await aiotcp.create_connection(Recorder, peer, PORT)
        assert isinstance(proto, Recorder)
        await asyncio.wait_for(proto.lost, 5)
        assert b"".join(e for e in proto.events if isinstance(e, bytes)) == REFUSAL
        exc = proto.events[-1]
        assert isinstance(exc, ConnectionResetError) and exc.errno == errno.ECONNRESET

    with kernel_refuser(b, PORT), a.entered():
        run(main, loop_kind)


def serve_once_and_close_first(a: Host, b: Host, port: int, family: str) -> None:
    """A kernel server on A:``port`` (SO_REUSEADDR, as asyncio's) answers one client
    from B over ``family`` and closes first, which leaves A's side of it in TIME-WAIT."""
    listener = a.listen(port)  # SO_REUSEADDR, like every server framework
    client = b.connect(a.address_of(family), port)
    conn, _ = listener.accept()
    conn.sendall(b"bye")
    conn.close()  # the active close: TIME-WAIT is on A, bound to ``port``
    assert client.recv(10) == b"bye" and client.recv(10) == b""
    client.close()
    listener.close()
    states = a.run(["ss", "-Htan", "state", "time-wait", f"sport = :{port}"]).stdout
    assert states.strip(), "the kernel's connection should be in TIME-WAIT on A"


def test_a_server_restarts_on_a_port_the_kernel_has_in_time_wait(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """asyncio sets SO_REUSEADDR on listening sockets, so a server restarts at once
    after another one on the same port stopped; so does aiotcp (``reuse_address``
    defaults to True), and ``reuse_address=False`` keeps the kernel's refusal."""
    a, b = family_hosts
    serve_once_and_close_first(a, b, PORT, family)

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"aiotcp here")
        writer.close()

    async def main() -> None:
        with pytest.raises(OSError) as refused:
            await aiotcp.start_server(greet, port=PORT, reuse_address=False)
        assert refused.value.errno == errno.EADDRINUSE
        async with await aiotcp.start_server(greet, port=PORT):
            client = await asyncio.to_thread(b.connect, a.address_of(family), PORT)
            with client:
                assert await asyncio.to_thread(client.recv, 100) == b"aiotcp here"

    with a.entered():
        run(main, loop_kind)


def test_a_rejected_call_leaves_its_port_free(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """A misspelt option is a TypeError before anything is reserved: the port the
    call named is still free for the next call (nothing leaks)."""
    a, b = family_hosts
    peer = b.address_of(family)
    anywhere = ("0.0.0.0" if family == "ipv4" else "::", 62000)

    async def main() -> None:
        stack = aiotcp.get_stack()
        held = len(stack.guard.reservations)
        with pytest.raises(TypeError):
            await aiotcp.start_server(lambda r, w: None, port=PORT, no_such_option=1)
        with pytest.raises(TypeError):
            await aiotcp.open_connection(peer, PORT, local_addr=anywhere, nodelai=True)
        assert len(stack.guard.reservations) == held
        server = await aiotcp.start_server(lambda r, w: None, port=PORT)
        server.close()
        listener = await asyncio.to_thread(b.listen, PORT)
        try:
            _, writer = await aiotcp.open_connection(peer, PORT, local_addr=anywhere)
            assert writer.get_extra_info("sockname")[1] == 62000
            writer.close()
        finally:
            listener.close()

    with a.entered():
        run(main, loop_kind)


@pytest.mark.parametrize("close_with", ["writer", "transport"])
def test_closing_with_input_left_in_the_reader_resets_the_connection(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, close_with: str
) -> None:
    """RFC 2525 §2.17 / RFC 9293 §3.10.4, as Linux does: a close with received data
    the application never read sends RST, so the peer learns the data was lost.
    Bytes waiting in the stream reader count as unread; a handler that read all
    its input closes with a FIN."""
    a, b = family_hosts

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readexactly(4)
        if request == b"read":
            await reader.readexactly(7)  # the whole request
        else:
            await asyncio.sleep(0.1)  # the rest of it is in the reader, unread
        writer.write(b"reply")
        if close_with == "writer":
            writer.close()
        else:
            writer.transport.close()

    def client(request: bytes) -> tuple[bytes, str]:
        with b.connect(a.address_of(family), PORT) as sock:
            sock.sendall(request)
            got = b""
            try:
                while chunk := sock.recv(100):
                    got += chunk
            except ConnectionResetError as exc:
                return got, errno.errorcode[exc.errno]
            return got, "EOF"

    async def main() -> None:
        async with await aiotcp.start_server(handler, port=PORT):
            reset = await asyncio.to_thread(client, b"skip request")
            clean = await asyncio.to_thread(client, b"read, whole")
        assert reset[1] == "ECONNRESET"
        assert clean == (b"reply", "EOF")

    with a.entered():
        run(main, loop_kind)


@pytest.mark.parametrize(
    "destination",
    ["224.0.0.5", "239.1.2.3", "255.255.255.255", "198.18.0.255", "ff02::1", "ff0e::1:3"],
)
def test_a_connect_to_a_broadcast_or_multicast_address_fails_as_the_kernels(
    hosts6: tuple[Host, Host], loop_kind: LoopKind, destination: str
) -> None:
    """RFC 9293 §3.9.1.1 (MUST-46): no SYN to a broadcast or multicast address (IPv6
    has only multicast); the call fails with the errno the kernel's ``connect``
    gives (ENETUNREACH), and the port it would have used is not left reserved."""
    a, _ = hosts6

    def kernel() -> int | None:
        try:
            socket.create_connection((destination, PORT), timeout=2).close()
        except OSError as exc:
            return exc.errno
        return None

    async def main() -> int | None:
        stack = aiotcp.get_stack()
        held = len(stack.guard.reservations)
        try:
            await aiotcp.open_connection(destination, PORT)
        except OSError as exc:
            assert len(stack.guard.reservations) == held
            return exc.errno
        return None

    expected = a.call(kernel)
    with a.entered():
        got = run(main, loop_kind)
    assert (got, expected) == (errno.ENETUNREACH, errno.ENETUNREACH)
