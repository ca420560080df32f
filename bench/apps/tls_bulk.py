"""TLS bulk transfer: one side an asyncio program, the other a plain blocking peer.

    python bench/apps/tls_bulk.py serve PORT CERTDIR [uvloop]
    python bench/apps/tls_bulk.py fetch HOST PORT CERTDIR NBYTES WARMUP_BYTES [uvloop]
    python bench/apps/tls_bulk.py peer-serve PORT CERTDIR
    python bench/apps/tls_bulk.py peer-fetch HOST PORT CERTDIR NBYTES WARMUP_BYTES

``serve`` and ``fetch`` are the side under test: ordinary asyncio streams with
``ssl=``, run plainly (the kernel) or under ``python -m aiotcp run``.  The peers
are blocking sockets in a thread per connection: OpenSSL's record layer and the
kernel's TCP with no event loop in between, so the peer costs as little as a
Python peer can and the side under test is what limits the transfer.

A client asks for a size (``b"N\\n"``) and the server sends that many bytes in
64 KiB writes, then closes (close_notify).  Each transfer prints one line,
``<label> BYTES CPU_SECONDS WALL_SECONDS``: the process's CPU and the wall time
from the request to the last byte (the client's) or to the close (the server's).
CERTDIR holds ``server.pem`` (key and chain) and ``ca.pem``.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import socket
import ssl
import sys
import threading
import time

import appkit  # bench/apps/appkit.py: the script's directory is on sys.path

CHUNK = 1 << 16
READ = 1 << 20
TIMEOUT = 120.0  # the peers' sockets: a stuck transfer fails instead of hanging


def server_context(certdir: pathlib.Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certdir / "server.pem")
    return ctx


def client_context(certdir: pathlib.Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certdir / "ca.pem"))


def report(label: str, nbytes: int, cpu0: float, t0: float) -> None:
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    print(f"{label} {nbytes} {cpu:.6f} {wall:.6f}", flush=True)


# ------------------------------------------------------------- the side under test


async def serve(port: int, certdir: pathlib.Path) -> None:
    block = bytes(CHUNK)

    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            size = int(await reader.readline())
            cpu0, t0 = time.process_time(), time.perf_counter()
            sent = 0
            while sent < size:
                piece = block if size - sent >= CHUNK else block[: size - sent]
                writer.write(piece)
                await writer.drain()
                sent += len(piece)
            writer.close()
            await writer.wait_closed()
            report("sent", sent, cpu0, t0)
        except Exception as exc:  # the bench reads a line per transfer, never blocks on one
            print(f"error {exc!r}", flush=True)

    server = await asyncio.start_server(send, "0.0.0.0", port, ssl=server_context(certdir))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    appkit.ready()
    async with server:
        await stop.wait()


async def fetch(host: str, port: int, certdir: pathlib.Path, size: int, warmup: int) -> None:
    ctx = client_context(certdir)
    appkit.ready()
    for label, want in (("warmup", warmup), ("received", size)):
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        cpu0, t0 = time.process_time(), time.perf_counter()
        writer.write(b"%d\n" % want)
        got = 0
        while chunk := await reader.read(READ):
            got += len(chunk)
        report(label, got, cpu0, t0)
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
        if got != want:
            raise SystemExit(f"fetched {got} bytes, asked for {want}")


# ---------------------------------------------------------------- the blocking peers


def read_request(tls: ssl.SSLSocket) -> bytes:
    """The client's one line; it sends nothing after it, so nothing is over-read."""
    line = b""
    while not line.endswith(b"\n"):
        more = tls.recv(64)
        if not more:
            raise ValueError(f"no request line, got {line!r}")
        line += more
    return line


def peer_serve(port: int, certdir: pathlib.Path) -> None:
    ctx = server_context(certdir)
    block = bytes(CHUNK)

    def send(conn: socket.socket) -> None:
        try:
            with ctx.wrap_socket(conn, server_side=True) as tls:
                size = int(read_request(tls))
                cpu0, t0 = time.process_time(), time.perf_counter()
                view = memoryview(block)
                sent = 0
                while sent < size:
                    piece = view[: min(CHUNK, size - sent)]
                    tls.sendall(piece)
                    sent += len(piece)
                report("sent", sent, cpu0, t0)
                with contextlib.suppress(OSError):  # a client may close without its own
                    tls.unwrap()  # close_notify
        except (OSError, ValueError) as exc:
            print(f"error {exc!r}", flush=True)

    with socket.create_server(("0.0.0.0", port), backlog=64) as listener:
        print("ready peer", flush=True)
        while True:
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            threading.Thread(target=send, args=(conn,), daemon=True).start()


def peer_fetch(host: str, port: int, certdir: pathlib.Path, size: int, warmup: int) -> None:
    ctx = client_context(certdir)
    buf = bytearray(READ)
    for label, want in (("warmup", warmup), ("received", size)):
        raw = socket.create_connection((host, port), timeout=TIMEOUT)
        with ctx.wrap_socket(raw, server_hostname=host) as tls:  # the handshake, untimed
            cpu0, t0 = time.process_time(), time.perf_counter()
            tls.sendall(b"%d\n" % want)
            got = 0
            while n := tls.recv_into(buf):
                got += n
            report(label, got, cpu0, t0)
        if got != want:
            raise SystemExit(f"fetched {got} bytes, asked for {want}")


def main(argv: list[str]) -> None:
    mode, *args = argv
    uvloop_wanted = args[-1:] == ["uvloop"]
    if uvloop_wanted:
        args = args[:-1]
        import uvloop

        uvloop.install()
    with appkit.profiled():
        if mode == "serve":
            asyncio.run(serve(int(args[0]), pathlib.Path(args[1])))
        elif mode == "fetch":
            host, port, certdir, size, warmup = args
            asyncio.run(fetch(host, int(port), pathlib.Path(certdir), int(size), int(warmup)))
        elif mode == "peer-serve":
            peer_serve(int(args[0]), pathlib.Path(args[1]))
        elif mode == "peer-fetch":
            host, port, certdir, size, warmup = args
            peer_fetch(host, int(port), pathlib.Path(certdir), int(size), int(warmup))
        else:
            raise SystemExit(f"unknown mode {mode!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv[1:])
