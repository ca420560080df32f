"""Real libraries, unmodified, over aiotcp: aiohttp, websockets, redis-py and httpx
against the Linux kernel's TCP (curl, wrk, redis-server, Python's own servers) in
another namespace, on asyncio's loop and on uvloop.

The libraries reach aiotcp only through the drop-in loop (``python -m aiotcp run``
or ``aiotcp.run``); none of them is told about it.  So every test also checks that
the traffic really went over aiotcp and not around it to the kernel: the transport
or socket class the library got, aiotcp's own connection table, and ``ss`` in
aiotcp's namespace showing no established kernel socket for the port.

TLS over an impaired link is ``test_tls.py``'s (``test_tls_over_a_lossy_reordering_link``).

Every test runs over IPv4 and IPv6 (``family``): the drop-in takes a program's
IPv6 as it takes its IPv4.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import re
import signal
import ssl
import subprocess
import sys
import textwrap
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

import aiotcp
from aiotcp.testing.loops import LOOP_KINDS, LoopKind, loop_factory
from aiotcp.testing.netns import Host, pattern, read_line, wait_listening
from aiotcp.transport import TcpTransport

pytestmark = pytest.mark.root

PORT = 8080
TLS_PORT = 8443
FILE_SIZE = 8 * 1024 * 1024
WS_SIZES = (1, 64 * 1024, 1024 * 1024)


# ----------------------------------------------------------------------- helpers


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_program(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


def under_aiotcp(kind: LoopKind, *args: str) -> list[str]:
    """The command line that runs a Python program unchanged with its TCP over aiotcp."""
    return [sys.executable, "-m", "aiotcp", "run", "--loop", kind, *args]


def run_in(host: Host, kind: LoopKind, main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """``aiotcp.run(main())`` on this thread inside ``host``, on the loop ``kind``:
    the library under test finds an ordinary running loop."""
    with host.entered():
        return aiotcp.run(asyncio.wait_for(main(), 60), loop_factory=loop_factory(kind))


def kernel_connections(host: Host, port: int) -> list[str]:
    """The kernel's established TCP sockets in ``host`` with ``port`` at either end."""
    out = host.run(
        ["ss", "-tnH", "state", "established", f"( sport = :{port} or dport = :{port} )"]
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def url_host(host: Host, family: str) -> str:
    """``host``'s address in ``family`` as a URL has it (IPv6 in brackets)."""
    return host.address if family == "ipv4" else f"[{host.address6}]"


async def only_aiotcp_carries(a: Host, b: Host, port: int, family: str) -> None:
    """While the library's connection to or from ``port`` is open: aiotcp's table has
    it, and the kernel in ``a`` has no socket for it (the kernel in ``b`` does, so
    the ``ss`` query is one that would see it)."""
    rows = aiotcp.connections(port=port, state="ESTABLISHED")
    assert any(row["remote"][0] == b.address_of(family) for row in rows), rows
    assert await asyncio.to_thread(kernel_connections, a, port) == []
    assert await asyncio.to_thread(kernel_connections, b, port) != []


def checked(result: subprocess.CompletedProcess[str]) -> str:
    """A program's output, once it exited with status 0 (else its stderr, to see why)."""
    assert result.returncode == 0, result.stderr
    return result.stdout


def no_aiotcp_rules(host: Host) -> bool:
    tables = ("iptables", "ip6tables")
    return not any("aiotcp" in host.run([cmd, "-S"]).stdout.lower() for cmd in tables)


def curl(host: Host, url: str, *extra: str) -> bytes:
    out: bytes = host.run(
        ["curl", "-sS", "--fail", "--noproxy", "*", "--max-time", "30", *extra, url], text=False
    ).stdout
    return out


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ca.pem, and server.pem (chain and key) for both hosts' addresses: clients
    verify the server by the IP address they connect to."""
    ca = trustme.CA()
    out = tmp_path_factory.mktemp("certs")
    ca.cert_pem.write_to_path(str(out / "ca.pem"))
    cert = ca.issue_cert("198.18.0.1", "198.18.0.2", "fd00:198:18::1", "fd00:198:18::2")
    cert.private_key_and_cert_chain_pem.write_to_path(str(out / "server.pem"))
    return out


def client_context(certs: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs / "ca.pem"))


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """A directory with ``big.bin``: FILE_SIZE pseudo-random bytes (``pattern(seed=1)``)."""
    directory = tmp_path / "www"
    directory.mkdir()
    (directory / "big.bin").write_bytes(pattern(FILE_SIZE, seed=1))
    return directory


BIG_SHA = sha(pattern(FILE_SIZE, seed=1))


# A kernel HTTPS file server: http.server's handler, HTTP/1.1 (keep-alive), TLS.
KERNEL_HTTPS = """
import functools, http.server, socket, ssl, sys
directory, address, port, pem = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
server = Server((address, port), functools.partial(Handler, directory=directory))
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(pem)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


@contextlib.contextmanager
def kernel_http_server(
    host: Host, family: str, directory: Path, port: int, pem: Path | None = None
) -> Iterator[None]:
    """``python -m http.server`` (HTTP/1.1) on the kernel, or its HTTPS twin with
    ``pem``, on ``host``'s address in ``family``."""
    address = host.address_of(family)
    if pem is None:
        args = ["-m", "http.server", "-p", "HTTP/1.1", "-b", address, "-d", str(directory)]
        args.append(str(port))
    else:
        args = ["-c", textwrap.dedent(KERNEL_HTTPS), str(directory), address, str(port)]
        args.append(str(pem))
    proc = host.python(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(host, port)
        yield
    finally:
        host.stop(proc)


@contextlib.contextmanager
def kernel_web_servers(host: Host, family: str, directory: Path, certs: Path) -> Iterator[None]:
    """Kernel file servers in ``host``: HTTP on PORT, HTTPS on TLS_PORT."""
    with kernel_http_server(host, family, directory, PORT):
        with kernel_http_server(host, family, directory, TLS_PORT, certs / "server.pem"):
            yield


def interrupt(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """SIGINT (Ctrl-C) to ``proc``; its exit status and output."""
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


# ------------------------------------------------------------------------- aiohttp

# An aiohttp application as its authors write it: web.run_app makes its own loop.
# "/" answers with the class of the transport and socket it was served over.
AIOHTTP_APP = """
import ssl, sys
from aiohttp import web

async def hello(request):
    transport = request.transport
    socket = transport.get_extra_info("socket")
    return web.Response(text=f"{type(transport).__name__} {type(socket).__name__}")

async def big(request):
    return web.FileResponse(sys.argv[3])

context = None
if len(sys.argv) > 4:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(sys.argv[4])
app = web.Application()
app.add_routes([web.get("/", hello), web.get("/big.bin", big)])
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), ssl_context=context)
"""

# aiohttp's client on the kernel: prints "/"'s answer and the file's digest.
KERNEL_AIOHTTP_CLIENT = """
import asyncio, hashlib, sys
import aiohttp

async def main(base):
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/") as response:
            text = await response.text()
        async with session.get(base + "/big.bin") as response:
            body = await response.read()
    print(text, hashlib.sha256(body).hexdigest(), flush=True)

asyncio.run(main(sys.argv[1]))
"""


@contextlib.contextmanager
def aiohttp_app(
    a: Host, kind: LoopKind, family: str, tmp_path: Path, www: Path, pem: Path | None = None
) -> Iterator[subprocess.Popen[str]]:
    """AIOHTTP_APP under ``python -m aiotcp run --control`` in ``a``, serving once
    run_app says so; killed on the way out if the test did not stop it."""
    program = write_program(tmp_path / "app.py", AIOHTTP_APP)
    args = [a.address_of(family), str(PORT), str(www / "big.bin"), *([str(pem)] if pem else [])]
    proc = a.popen(
        under_aiotcp(kind, "--control", str(program), *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc.stdout, 30)
        assert line.startswith("======== Running on"), line
        yield proc
    finally:
        if proc.poll() is None:
            a.stop(proc, signal.SIGKILL)


def aiotcp_table(a: Host, pid: int, port: int) -> list[dict[str, Any]]:
    """The connection table of the stack in process ``pid``, via its control socket."""
    out = a.run([sys.executable, "-m", "aiotcp", "ss", "--pid", str(pid), "--port", str(port),
                 "--json"]).stdout  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_aiohttp_run_app_serves_curl_wrk_and_a_kernel_aiohttp_client(
    family_hosts: tuple[Host, Host], family: str, tmp_path: Path, www: Path, kind: LoopKind
) -> None:
    """``web.run_app`` makes its own loop, which the drop-in policy hands out; its
    ``FileResponse`` goes through ``loop.sendfile``, its keep-alive tuning through
    ``get_extra_info('socket').setsockopt``.  Ctrl-C ends it as run_app ends:
    status 0, and aiotcp's firewall rules are gone with the process."""
    a, b = family_hosts
    base = f"http://{url_host(a, family)}:{PORT}"
    with aiohttp_app(a, kind, family, tmp_path, www) as app:
        assert curl(b, base + "/") == b"TcpTransport TcpSocket"
        assert sha(curl(b, base + "/big.bin")) == BIG_SHA

        client = write_program(tmp_path / "client.py", KERNEL_AIOHTTP_CLIENT)
        out = checked(b.run([sys.executable, str(client), base], check=False)).split()
        assert out == ["TcpTransport", "TcpSocket", BIG_SHA]

        # Sixteen keep-alive connections at once, each a request after another.
        bench = b.run(["wrk", "-t1", "-c16", "-d1s", base + "/"]).stdout
        assert "Socket errors" not in bench and "Non-2xx" not in bench, bench
        done = re.search(r"(\d+) requests in", bench)
        assert done is not None and int(done.group(1)) >= 100, bench

        # A kernel connection from b, held open: aiotcp's stack in the app has it,
        # a's kernel has no socket for it, b's kernel has.
        with b.connect(a.address_of(family), PORT) as held:
            client_port = held.getsockname()[1]
            rows = aiotcp_table(a, app.pid, PORT)
            assert {(r["state"], tuple(r["remote"])) for r in rows} >= {
                ("ESTABLISHED", (b.address_of(family), client_port))
            }, rows
            assert kernel_connections(a, PORT) == []
            assert len(kernel_connections(b, PORT)) == 1

        status, _, err = interrupt(app)
    assert status == 0, err
    assert no_aiotcp_rules(a)


# aiohttp's client as its users write it; for each URL: the class of the transport
# and socket the response came over, and the body's digest.
AIOHTTP_CLIENT = """
import asyncio, hashlib, ssl, sys
import aiohttp

async def main(cafile, urls):
    context = ssl.create_default_context(cafile=cafile)
    async with aiohttp.ClientSession() as session:
        for url in urls:
            async with session.get(url, ssl=context) as response:
                transport = response.connection.transport
                socket = transport.get_extra_info("socket")
                body = await response.read()
            print(type(transport).__name__, type(socket).__name__,
                  hashlib.sha256(body).hexdigest(), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2:]))
"""


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_aiohttp_client_session_fetches_from_kernel_http_and_https_servers(
    family_hosts: tuple[Host, Host],
    family: str,
    tmp_path: Path,
    www: Path,
    certs: Path,
    kind: LoopKind,
) -> None:
    """``aiohttp.ClientSession`` under ``python -m aiotcp run``.  aiohttp resolves
    and connects by itself (``aiohappyeyeballs.start_connection``) and then hands
    the socket to ``create_connection(sock=...)``: the drop-in must catch the
    connection there (``aiotcp.handoff``), or it silently stays on the kernel."""
    a, b = family_hosts
    program = write_program(tmp_path / "client.py", AIOHTTP_CLIENT)
    host = url_host(b, family)
    urls = [f"http://{host}:{PORT}/big.bin", f"https://{host}:{TLS_PORT}/big.bin"]
    with kernel_web_servers(b, family, www, certs):
        result = a.run(under_aiotcp(kind, str(program), str(certs / "ca.pem"), *urls), check=False)
    plain, secure = (line.split() for line in checked(result).splitlines())
    assert plain == ["TcpTransport", "TcpSocket", BIG_SHA]
    assert secure[1:] == ["TcpSocket", BIG_SHA]  # under asyncio's TLS transport: aiotcp's


# ---------------------------------------------------------------------- websockets

# websockets' threaded client on the kernel: every size echoed, its digest printed.
KERNEL_WS_CLIENT = """
import hashlib, random, sys
from websockets.sync.client import connect
with connect(sys.argv[1], max_size=None, proxy=None) as ws:
    for size in map(int, sys.argv[2:]):
        data = random.Random(size).randbytes(size)
        ws.send(data)
        echoed = ws.recv(timeout=30)
        print(size, hashlib.sha256(echoed).hexdigest(), flush=True)
"""

KERNEL_WS_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def echo(ws):
    async for message in ws:
        await ws.send(message)

async def main():
    async with serve(echo, sys.argv[1], int(sys.argv[2]), max_size=None) as server:
        await server.serve_forever()

asyncio.run(main())
"""


def expected_echoes() -> list[str]:
    return [f"{size} {sha(pattern(size, seed=size))}" for size in WS_SIZES]


def test_websockets_server_on_aiotcp_echoes_a_kernel_client(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, tmp_path: Path
) -> None:
    """``websockets.asyncio.server.serve``: the HTTP upgrade, then messages from one
    byte to 1 MiB (many TCP segments, several frames' worth of flow control)."""
    from websockets.asyncio.server import ServerConnection, serve

    a, b = family_hosts
    client = write_program(tmp_path / "ws_client.py", KERNEL_WS_CLIENT)
    transports: list[asyncio.BaseTransport] = []

    async def echo(ws: ServerConnection) -> None:
        transports.append(ws.transport)
        async for message in ws:
            await ws.send(message)

    async def main() -> list[str]:
        async with serve(echo, a.address_of(family), PORT, max_size=None):
            url = f"ws://{url_host(a, family)}:{PORT}"
            done = await asyncio.to_thread(
                b.run, [sys.executable, str(client), url, *map(str, WS_SIZES)], check=False
            )
        return checked(done).splitlines()

    assert run_in(a, loop_kind, main) == expected_echoes()
    assert [type(t) for t in transports] == [TcpTransport]


def test_websockets_client_on_aiotcp_against_a_kernel_server(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """``websockets.asyncio.client.connect`` calls ``loop.create_connection`` with
    the URI's host and port: over aiotcp, messages of every size echoed whole."""
    from websockets.asyncio.client import connect

    a, b = family_hosts
    server = b.python(["-c", textwrap.dedent(KERNEL_WS_SERVER), b.address_of(family), str(PORT)])

    async def main() -> list[str]:
        got = []
        url = f"ws://{url_host(b, family)}:{PORT}"
        async with connect(url, max_size=None, proxy=None) as ws:
            assert isinstance(ws.transport, TcpTransport)
            await only_aiotcp_carries(a, b, PORT, family)
            for size in WS_SIZES:
                await ws.send(pattern(size, seed=size))
                echoed = await ws.recv()
                assert isinstance(echoed, bytes)
                got.append(f"{size} {sha(echoed)}")
        return got

    try:
        wait_listening(b, PORT)
        assert run_in(a, loop_kind, main) == expected_echoes()
    finally:
        b.stop(server)


# --------------------------------------------------------------------------- redis


def test_redis_asyncio_against_redis_server(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, tmp_path: Path
) -> None:
    """redis-py's asyncio client (``asyncio.open_connection``, then TCP_NODELAY and
    keepalive on ``get_extra_info('socket')``): a 1 MiB value both ways, and a
    pipeline of 1000 commands written in one go with 1000 replies read back."""
    import redis.asyncio as redis

    a, b = family_hosts
    port = 6390
    server = b.popen(
        ["redis-server", "--port", str(port), "--bind", b.address_of(family), "--save", "",
         "--appendonly", "no", "--protected-mode", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    value = pattern(1024 * 1024, seed=6)

    async def main() -> None:
        client = redis.Redis(host=b.address_of(family), port=port, socket_keepalive=True)
        try:
            assert await client.set("big", value)
            assert await client.get("big") == value
            async with client.pipeline(transaction=False) as pipe:
                for _ in range(1000):
                    pipe.incr("counter")
                assert await pipe.execute() == list(range(1, 1001))
            await only_aiotcp_carries(a, b, port, family)
        finally:
            await client.aclose()

    try:
        wait_listening(b, port)
        run_in(a, loop_kind, main)
    finally:
        b.stop(server)


# --------------------------------------------------------------------------- httpx


def test_httpx_over_http_and_https(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, www: Path, certs: Path
) -> None:
    """httpx → httpcore → anyio, whose asyncio backend connects with
    ``loop.create_connection`` and does TLS itself (``ssl.MemoryBIO`` in
    ``anyio.streams.tls``) over the plain stream: both over aiotcp."""
    import httpx

    a, b = family_hosts

    async def main() -> None:
        async with httpx.AsyncClient(verify=client_context(certs), trust_env=False) as client:
            for scheme, port in (("http", PORT), ("https", TLS_PORT)):
                url = f"{scheme}://{url_host(b, family)}:{port}/big.bin"
                async with client.stream("GET", url) as response:
                    assert response.status_code == 200
                    assert response.http_version == "HTTP/1.1"
                    stream = response.extensions["network_stream"]
                    assert type(stream.get_extra_info("socket")).__name__ == "TcpSocket"
                    if scheme == "https":
                        assert stream.get_extra_info("ssl_object").version().startswith("TLS")
                    await only_aiotcp_carries(a, b, port, family)
                    assert sha(await response.aread()) == BIG_SHA

    with kernel_web_servers(b, family, www, certs):
        run_in(a, loop_kind, main)


def test_httpx_keeps_a_connection_alive(
    family_hosts: tuple[Host, Host], family: str, www: Path, loop_kind: LoopKind
) -> None:
    """Three requests on one ``AsyncClient`` to an HTTP/1.1 server share one
    connection, as they do on the kernel.  Whenever a response ends, httpcore's
    pool asks each idle connection whether the server closed it
    (``HTTP11Connection.has_expired``: ``is_socket_readable``, a ``poll()`` of
    ``get_extra_info('socket').fileno()``): aiotcp's descriptor must poll idle
    while the connection is, or no connection is ever reused."""
    import httpx

    a, b = family_hosts

    async def main() -> list[Any]:
        ports = []
        async with httpx.AsyncClient(trust_env=False) as client:
            for _ in range(3):
                response = await client.get(f"http://{url_host(b, family)}:{PORT}/big.bin")
                assert sha(response.content) == BIG_SHA
                stream = response.extensions["network_stream"]
                ports.append(stream.get_extra_info("client_addr"))
        return ports

    with kernel_http_server(b, family, www, PORT):
        ports = run_in(a, loop_kind, main)
    assert len(set(ports)) == 1, ports


def test_an_anyio_stream_closed_after_sending_delivers_everything(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """anyio (httpx's I/O layer) closes a TCP stream with
    ``transport.abort()``.  On asyncio's socket transports that drops only the
    transport's own buffer and closes the socket: the kernel still delivers what
    it holds, then sends FIN.  Bytes written and drained must arrive the same way
    over aiotcp, where the connection's send buffer plays the kernel's."""
    import anyio

    a, b = family_hosts
    data = pattern(4 * 1024 * 1024, seed=7)
    listening = b.listen(PORT)

    def read_all() -> bytes | OSError:
        listening.settimeout(20)
        conn, _ = listening.accept()
        conn.settimeout(20)
        chunks = []
        with conn:
            try:
                while chunk := conn.recv(1 << 20):
                    chunks.append(chunk)
            except OSError as exc:
                return exc
        return b"".join(chunks)

    async def main() -> bytes | OSError:
        reading = asyncio.create_task(asyncio.to_thread(read_all))
        stream = await anyio.connect_tcp(b.address_of(family), PORT)
        assert type(stream.extra(anyio.abc.SocketAttribute.raw_socket)).__name__ == "TcpSocket"
        await stream.send(data)
        await stream.aclose()
        return await reading

    try:
        received = run_in(a, loop_kind, main)
    finally:
        listening.close()
    assert isinstance(received, bytes), received
    assert sha(received) == sha(data)


# -------------------------------------------------------------------- HTTPS both ways


@pytest.mark.parametrize("kind", LOOP_KINDS)
def test_curl_fetches_from_an_aiohttp_https_app_on_aiotcp(
    family_hosts: tuple[Host, Host],
    family: str,
    tmp_path: Path,
    www: Path,
    certs: Path,
    kind: LoopKind,
) -> None:
    """``run_app(ssl_context=...)``: asyncio's TLS layer over aiotcp's transport
    (``FileResponse`` falls back from sendfile to writes under TLS); curl, with
    OpenSSL on the kernel, verifies the certificate and gets the file whole."""
    a, b = family_hosts
    base = f"https://{url_host(a, family)}:{PORT}"
    ca = ("--cacert", str(certs / "ca.pem"))
    with aiohttp_app(a, kind, family, tmp_path, www, certs / "server.pem") as app:
        transport, socket_class = curl(b, base + "/", *ca).decode().split()
        assert (transport, socket_class) == ("_SSLProtocolTransport", "TcpSocket")
        assert sha(curl(b, base + "/big.bin", *ca)) == BIG_SHA
        status, _, err = interrupt(app)
    assert status == 0, err
    assert no_aiotcp_rules(a)


def test_an_open_connection_tls_client_fetches_from_a_kernel_https_server(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, www: Path, certs: Path
) -> None:
    """``asyncio.open_connection(ssl=context)`` on the drop-in loop: a verified
    handshake with Python's ssl on the kernel, an HTTP/1.1 request, and the file
    byte-exact."""
    a, b = family_hosts

    async def main() -> bytes:
        context = client_context(certs)
        reader, writer = await asyncio.open_connection(b.address_of(family), TLS_PORT, ssl=context)
        try:
            assert type(writer.get_extra_info("socket")).__name__ == "TcpSocket"
            assert writer.get_extra_info("peercert") is not None
            request = f"GET /big.bin HTTP/1.1\r\nHost: {url_host(b, family)}\r\n\r\n"
            writer.write(request.encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ")
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            assert length is not None
            body = await reader.readexactly(int(length.group(1)))
            await only_aiotcp_carries(a, b, TLS_PORT, family)
            return body
        finally:
            writer.close()

    with kernel_http_server(b, family, www, TLS_PORT, certs / "server.pem"):
        assert sha(run_in(a, loop_kind, main)) == BIG_SHA
