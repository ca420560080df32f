"""The two-host demo: one entry point for docker-compose services and for namespaces.

    python -m aiotcp.demo.twohost server [--port 8080] [--clients 1]
    python -m aiotcp.demo.twohost client SERVER [--port 8080] [--size 1048576]

Both sides run aiotcp.  The client connects, uploads ``--size`` bytes, half-closes,
and checks the server's answer: the SHA-256 of what it received followed by the
same bytes echoed back.  Each side prints its state transitions and a final
verdict line (``TRANSFER VERIFIED``, ``CLEAN CLOSE``) that tests look for.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import time

import aiotcp
from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver
from aiotcp.io.packet import format_endpoint

T0 = time.monotonic()


def say(role: str, text: str) -> None:
    print(f"[{time.monotonic() - T0:7.3f}s] {role:6} {text}", flush=True)


def narrator(role: str) -> aiotcp.stack.StateObserver:
    def show(driver: ConnectionDriver, old: State, new: State) -> None:
        if old is State.CLOSED and new is State.LISTEN:
            return
        (lip, lport), (rip, rport) = driver.conn.local, driver.conn.remote
        say(
            role,
            f"{format_endpoint(lip, lport)} <-> {format_endpoint(rip, rport)}  "
            f"{old.value} -> {new.value}",
        )

    return show


async def serve(port: int, clients: int) -> int:
    done = asyncio.Event()
    served = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        data = await reader.read()  # to the client's FIN
        say("server", f"received {len(data)} bytes and EOF; answering")
        writer.write(hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        served += 1
        if served >= clients:
            done.set()

    async with aiotcp.Stack(msl=1.0) as stack:
        stack.state_observers.append(narrator("server"))
        async with await aiotcp.start_server(handle, port=port, stack=stack):
            say("server", f"listening on port {port}")
            await done.wait()
            await asyncio.sleep(2.5)  # TIME-WAIT of the last connection (2*MSL = 2 s)
            say("server", "CLEAN CLOSE" if not stack.connections else "connections left!")
    return 0


async def fetch(host: str, port: int, size: int) -> int:
    payload = bytes(i * 7 % 251 for i in range(size))
    async with aiotcp.Stack(msl=1.0) as stack:
        stack.state_observers.append(narrator("client"))
        for attempt in range(1, 51):  # the server container may still be starting
            try:
                reader, writer = await aiotcp.open_connection(host, port, stack=stack)
            except (ConnectionRefusedError, TimeoutError):
                await asyncio.sleep(0.2)
                continue
            say("client", f"connected after {attempt} attempt(s); sending {size} bytes")
            break
        else:
            say("client", f"could not connect to {host}:{port}")
            return 1
        writer.write(payload)
        writer.write_eof()
        digest = (await reader.readline()).strip().decode()
        echoed = await reader.read()
        ok = digest == hashlib.sha256(payload).hexdigest() and echoed == payload
        say("client", "TRANSFER VERIFIED" if ok else "TRANSFER CORRUPTED")
        writer.close()
        await writer.wait_closed()
        info = writer.get_extra_info("aiotcp")  # we sent the first FIN: TIME-WAIT is ours
        clean = info.state in ("TIME-WAIT", "CLOSED") and info.counters["rst_in"] == 0
        say("client", "CLEAN CLOSE" if clean else f"unclean close in {info.state}")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiotcp.demo.twohost")
    parser.add_argument("role", choices=["server", "client"])
    parser.add_argument("host", nargs="?", help="the server's address (client)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--size", type=int, default=1 << 20)
    args = parser.parse_args(argv)
    if args.role == "server":
        return asyncio.run(serve(args.port, args.clients))
    if not args.host:
        parser.error("client needs the server's address")
    return asyncio.run(fetch(args.host, args.port, args.size))


if __name__ == "__main__":
    sys.exit(main())
