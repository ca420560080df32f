"""One side of the stream-level demo, run in its own namespace and process.

    python -m aiotcp.demo.http_side server PORT SECONDS T0
    python -m aiotcp.demo.http_side client HOST PORT T0

Prints each state transition of its aiotcp connections, timed from ``T0`` (a
shared wall-clock origin, so the two processes' lines can be merged in order).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
import time

import aiotcp
from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver
from aiotcp.io.packet import format_endpoint

PAGE = b"Hello from aiotcp: TCP in user space, on asyncio.\n"
DEMO_MSL = 1.0


def observer(role: str, t0: float) -> aiotcp.stack.StateObserver:
    def show(driver: ConnectionDriver, old: State, new: State) -> None:
        if old is State.CLOSED and new is State.LISTEN:
            return  # a child of the listener being born, not a transition on the wire
        (lip, lport), (rip, rport) = driver.conn.local, driver.conn.remote
        print(
            f"[{time.time() - t0:7.4f}s] {role:6} {format_endpoint(lip, lport)} <-> "
            f"{format_endpoint(rip, rport)}  {old.value} -> {new.value}",
            flush=True,
        )

    return show


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(PAGE)}\r\nConnection: close\r\n\r\n"
    writer.write(head.encode() + PAGE)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


async def serve(port: int, seconds: float, t0: float) -> None:
    aiotcp.get_stack(msl=DEMO_MSL).state_observers.append(observer("server", t0))
    server = await aiotcp.start_server(handle, port=port)
    print("ready", flush=True)
    async with server:
        await asyncio.sleep(seconds)


async def fetch(host: str, port: int, t0: float) -> None:
    aiotcp.get_stack(msl=DEMO_MSL).state_observers.append(observer("client", t0))
    reader, writer = await aiotcp.open_connection(host, port)
    writer.write(b"GET / HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    status, _, body = response.partition(b"\r\n")[0], None, response.split(b"\r\n\r\n", 1)[1]
    print(f"client got: {status.decode()} body sha256 {hashlib.sha256(body).hexdigest()[:16]}")
    writer.close()
    await writer.wait_closed()
    await asyncio.sleep(2 * DEMO_MSL + 0.5)  # watch TIME-WAIT end


def main(argv: list[str]) -> None:
    if argv[0] == "server":
        asyncio.run(serve(int(argv[1]), float(argv[2]), float(argv[3])))
    else:
        asyncio.run(fetch(argv[1], int(argv[2]), float(argv[3])))


if __name__ == "__main__":
    main(sys.argv[1:])
