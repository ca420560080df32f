"""The benchmark's server side: the same asyncio handlers over the kernel and over aiotcp.

Runs in host B. Ports: kernel sink/source/echo/HTTP at 9000/9001/9002/9003 (asyncio's
``start_server``), aiotcp's at 9100/9101/9102/9103 (``aiotcp.start_server``).
Prints "ready" once listening; runs until killed.

    python bench/server.py SIZE_BYTES [asyncio|uvloop] [CONGESTION_CONTROL|default]

The kernel servers' sockets take the congestion control bench.py chose for the
kernel (``--kernel-cc``), so a kernel source sends with the same algorithm as
the kernel clients do.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import aiotcp
import bench  # bench.py: the script's directory is on sys.path
from aiotcp.testing.loops import LoopKind, loop_factory

KERNEL_BASE, AIOTCP_BASE = 9000, 9100
SINK, SOURCE, ECHO, HTTP = 0, 1, 2, 3
HELLO = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!"


def handlers(size: int) -> dict[int, aiotcp.streams.ClientConnectedCb]:
    block = bytes(1 << 16)

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        total = 0
        while chunk := await reader.read(1 << 20):
            total += len(chunk)
        writer.write(f"{total}\n".encode())
        await writer.drain()
        writer.close()

    async def source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(size // len(block)):
            writer.write(block)
            await writer.drain()
        writer.close()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        writer.close()

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Keep-alive HTTP/1.1 as a minimal asyncio server answers ``wrk``: one fixed
        response per request head (wrk's GETs have no body)."""
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(HELLO)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    return {SINK: sink, SOURCE: source, ECHO: echo, HTTP: http}


def with_congestion_control(
    handler: aiotcp.streams.ClientConnectedCb, name: str | None
) -> aiotcp.streams.ClientConnectedCb:
    """The handler, on a kernel socket switched to ``name`` first (bench.py's choice)."""

    def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Any:
        bench.use_congestion_control(writer.get_extra_info("socket"), name)
        return handler(reader, writer)

    return handle


async def main(size: int, kernel_cc: str | None) -> None:
    servers: list[asyncio.Server | aiotcp.streams.Server] = []
    for offset, handler in handlers(size).items():
        servers.append(
            await asyncio.start_server(
                with_congestion_control(handler, kernel_cc),
                port=KERNEL_BASE + offset,
                backlog=4096,
            )
        )
        servers.append(
            await aiotcp.start_server(
                handler, port=AIOTCP_BASE + offset, backlog=4096, nodelay=True
            )
        )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    import allocator  # bench/allocator.py: the script's directory is on sys.path

    allocator.steady()
    kind: LoopKind = sys.argv[2] if len(sys.argv) > 2 else "asyncio"  # type: ignore[assignment]
    cc = bench.congestion_control_arg(sys.argv[3] if len(sys.argv) > 3 else "default")
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        runner.run(main(int(sys.argv[1]), cc))
