"""TLS over aiotcp (asyncio's own TLS layer, ``aiotcp.tls``) against real peers:
curl and Python's ssl over the kernel's TCP, certificates made by the test."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

import aiotcp
from aiotcp.testing.impair import impair
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_source, pattern, read_line
from aiotcp.tls import start_tls

PORT = 8443
NAME = "aiotcp.test"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certs(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, and server.pem (certificate chain and key) for NAME and both hosts'
    addresses of both families."""
    out = tmp_path_factory.mktemp("certs")
    ca.cert_pem.write_to_path(str(out / "ca.pem"))
    cert = ca.issue_cert(NAME, "198.18.0.1", "198.18.0.2", "fd00:198:18::1", "fd00:198:18::2")
    cert.private_key_and_cert_chain_pem.write_to_path(str(out / "server.pem"))
    return out


def server_context(certs: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(certs / "server.pem"))
    return ctx


def client_context(certs: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A kernel TLS server: echo, or STARTTLS (a plain line first, then TLS echo).
KERNEL_TLS = textwrap.dedent(
    """
    import socket, ssl, sys, threading
    mode, pem, port, v6 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pem)
    if v6:  # both families
        lsock = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        lsock = socket.create_server(("0.0.0.0", port))
    print("ready", flush=True)
    def echo(conn):
        while data := conn.recv(65536):
            conn.sendall(data)
    def handle(conn):
        with conn:
            if mode == "starttls":
                line = b""
                while not line.endswith(b"\\n"):
                    line += conn.recv(1)
                assert line == b"STARTTLS\\r\\n", line
                conn.sendall(b"OK go ahead\\r\\n")
            with ctx.wrap_socket(conn, server_side=True) as tls:
                echo(tls)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()
    """
)


def start_kernel_tls_server(host: Host, mode: str, certs: Path) -> subprocess.Popen[str]:
    """KERNEL_TLS in ``host`` in ``mode`` ("echo" or "starttls"), ready on return,
    on both families where the host has IPv6."""
    v6 = "1" if host.address6 is not None else "0"
    proc = host.python(
        ["-c", KERNEL_TLS, mode, str(certs / "server.pem"), str(PORT), v6],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert read_line(proc.stdout, 20).strip() == "ready"
    return proc


@pytest.fixture
def kernel_tls_server(
    family_hosts: tuple[Host, Host], certs: Path
) -> Iterator[subprocess.Popen[str]]:
    _, b = family_hosts
    proc = start_kernel_tls_server(b, "echo", certs)
    yield proc
    b.stop(proc)


def test_curl_fetches_from_an_aiotcp_https_server(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, certs: Path
) -> None:
    """An HTTP server on aiotcp with ``ssl=``: curl, over the kernel's TCP and
    OpenSSL, verifies the certificate and gets the body whole."""
    a, b = family_hosts
    body = pattern(3 * 1024 * 1024, seed=8)
    address = a.address if family == "ipv4" else f"[{a.address6}]"  # curl's --resolve

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()
        writer.close()

    async def main() -> None:
        async with await aiotcp.start_server(handle, port=PORT, ssl=server_context(certs)):
            out = await asyncio.to_thread(
                b.run,
                [
                    "curl", "-sS", "--cacert", str(certs / "ca.pem"),
                    "--resolve", f"{NAME}:{PORT}:{address}", f"https://{NAME}:{PORT}/",
                    "-o", "-",
                ],
                text=False,
            )  # fmt: skip
            assert sha(out.stdout) == sha(body)

    with a.entered():
        run(main, loop_kind)


def test_an_aiotcp_tls_client_moves_bulk_through_a_kernel_tls_server(
    family_hosts: tuple[Host, Host],
    loop_kind: LoopKind,
    family: str,
    certs: Path,
    kernel_tls_server: subprocess.Popen[str],
) -> None:
    """``open_connection(ssl=context)``: the handshake verifies the name (``server_hostname``,
    checked against the certificate), then 4 MB go through a kernel TLS echo server
    and back byte-exact."""
    a, b = family_hosts
    peer = b.address_of(family)
    data = pattern(4 * 1024 * 1024, seed=9)

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(
            peer, PORT, ssl=client_context(certs), server_hostname=NAME
        )
        assert writer.get_extra_info("ssl_object").version().startswith("TLS")
        # The loop's own TLS layer: uvloop's compiled one on uvloop.
        layer_module = type(writer.transport).__module__
        assert layer_module.startswith("uvloop" if loop_kind == "uvloop" else "asyncio")

        async def send() -> None:
            for i in range(0, len(data), 65536):
                writer.write(data[i : i + 65536])
                await writer.drain()

        sender = asyncio.create_task(send())
        echoed = await reader.readexactly(len(data))
        await sender
        assert sha(echoed) == sha(data)
        writer.close()
        await writer.wait_closed()

        with pytest.raises(ssl.SSLCertVerificationError):
            await aiotcp.open_connection(peer, PORT, ssl=client_context(certs),
                                         server_hostname="not-" + NAME)  # fmt: skip

    with a.entered():
        run(main, loop_kind)


def test_starttls_upgrades_a_plain_connection(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, certs: Path
) -> None:
    """SMTP/IMAP-style STARTTLS: a plain exchange, then ``writer.start_tls`` on the
    same connection, on both loops (uvloop's ``loop.start_tls`` refuses foreign
    transports; aiotcp's writer upgrades through ``aiotcp.tls.start_tls``)."""
    a, b = family_hosts
    proc = start_kernel_tls_server(b, "starttls", certs)

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(b.address_of(family), PORT)
        writer.write(b"STARTTLS\r\n")
        assert await reader.readline() == b"OK go ahead\r\n"
        await writer.start_tls(client_context(certs), server_hostname=NAME)
        assert writer.get_extra_info("ssl_object") is not None
        writer.write(b"secret\n")
        assert await reader.readline() == b"secret\n"
        writer.close()
        await writer.wait_closed()

    with a.entered():
        run(main, loop_kind)
    b.stop(proc)


def test_an_aiotcp_server_upgrades_with_start_tls(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, certs: Path
) -> None:
    """The server side of STARTTLS under a kernel client that upgrades its socket:
    asyncio's own ``loop.start_tls`` on asyncio's loop (aiotcp's transport is
    ``_start_tls_compatible``), ``aiotcp.tls.start_tls`` on uvloop (whose
    ``start_tls`` takes only its own transports)."""
    a, b = family_hosts

    class Upgrading(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]

        def data_received(self, data: bytes) -> None:
            if data == b"STARTTLS\r\n":
                # The ClientHello may follow before the upgrade task runs: hold it
                # back (start_tls resumes reading), as a STARTTLS server must.
                self.transport.pause_reading()
                self.transport.write(b"OK\r\n")
                self.upgrading = asyncio.ensure_future(self.upgrade())
            else:
                self.transport.write(data.upper())

        async def upgrade(self) -> None:
            upgrade = asyncio.get_running_loop().start_tls if loop_kind == "asyncio" else start_tls
            upgraded = await upgrade(self.transport, self, server_context(certs), server_side=True)
            assert upgraded is not None
            self.transport = upgraded

    client = textwrap.dedent(
        f"""
        import socket, ssl
        sock = socket.create_connection(("{a.address_of(family)}", {PORT}))
        sock.sendall(b"STARTTLS\\r\\n")
        assert sock.recv(100) == b"OK\\r\\n"
        ctx = ssl.create_default_context(cafile="{certs / "ca.pem"}")
        tls = ctx.wrap_socket(sock, server_hostname="{NAME}")
        tls.sendall(b"hello")
        print(tls.recv(100).decode())
        """
    )

    async def main() -> None:
        async with await aiotcp.create_server(Upgrading, port=PORT):
            out = await asyncio.to_thread(b.run, ["python3", "-c", client])
            assert out.stdout.strip() == "HELLO"

    with a.entered():
        run(main, loop_kind)


def test_tls_over_a_lossy_reordering_link_arrives_whole(
    family_hosts: tuple[Host, Host],
    family: str,
    certs: Path,
    kernel_tls_server: subprocess.Popen[str],
) -> None:
    """Loss, delay and reordering under TLS: any corruption or gap would fail the
    record MAC; the echo comes back byte-exact.  Both directions are impaired on B."""
    a, b = family_hosts
    data = pattern(1024 * 1024, seed=10)

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(
            b.address_of(family), PORT, ssl=client_context(certs), server_hostname=NAME
        )
        writer.write(data)
        echoed = await reader.readexactly(len(data))
        assert sha(echoed) == sha(data)
        writer.close()

    with impair(b, loss=0.02, delay=0.005, jitter=0.004, seed=3, direction="both"):
        with a.entered():
            run(main, "asyncio", timeout=120)


def test_a_buffered_protocol_gets_the_stream_in_its_own_buffer(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """``asyncio.BufferedProtocol``: the transport copies straight into the
    protocol's buffer (``get_buffer``/``buffer_updated``), a little at a time if
    the buffer is small, and nothing is lost or repeated."""
    a, b = family_hosts
    data = pattern(2 * 1024 * 1024)  # what kernel_source sends

    class Collector(asyncio.BufferedProtocol):
        def __init__(self) -> None:
            self.buf = bytearray(1000)  # smaller than a segment: partial fills
            self.got = bytearray()
            self.done = asyncio.get_running_loop().create_future()

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.got += self.buf[:nbytes]

        def eof_received(self) -> None:
            self.done.set_result(None)

    async def main() -> None:
        transport, proto = await aiotcp.create_connection(Collector, b.address_of(family), 7000)
        assert isinstance(proto, Collector)
        await asyncio.wait_for(proto.done, 30)
        assert sha(bytes(proto.got)) == sha(data)
        transport.close()

    with kernel_source(b, 7000, len(data)), a.entered():
        run(main, loop_kind)


def test_tls_arguments_are_checked_as_asyncio_checks_them(
    hosts: tuple[Host, Host], certs: Path
) -> None:
    """The same ValueErrors as asyncio, before anything is reserved (IPv4 only: no
    packet is sent)."""
    a, b = hosts

    async def main() -> None:
        stack = aiotcp.get_stack()
        held = len(stack.guard.reservations)
        with pytest.raises(ValueError, match="server_hostname is only meaningful"):
            await aiotcp.open_connection(b.address, PORT, server_hostname=NAME)
        with pytest.raises(ValueError, match="ssl_handshake_timeout is only meaningful"):
            await aiotcp.start_server(lambda r, w: None, port=PORT, ssl_handshake_timeout=1)
        with pytest.raises(TypeError, match="SSLContext"):
            await aiotcp.start_server(lambda r, w: None, port=PORT, ssl=True)
        assert len(stack.guard.reservations) == held

    with a.entered():
        run(main, "asyncio")
