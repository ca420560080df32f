"""Echo server on aiotcp: asyncio's stream API, TCP done in user space.

    sudo python examples/echo_server.py --port 7000 [--clients N]

Prints each connection's state changes as aiotcp reports them.
"""

from __future__ import annotations

import argparse
import asyncio

import aiotcp


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")
    print(f"{peer[0]}:{peer[1]} connected", flush=True)
    total = 0
    while data := await reader.read(65536):
        total += len(data)
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    print(f"{peer[0]}:{peer[1]} done, echoed {total} bytes", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description="aiotcp echo server")
    parser.add_argument("--host", default=None)
    parser.add_argument("--port", type=int, default=7000)
    parser.add_argument("--clients", type=int, default=0, help="exit after N clients (0: never)")
    args = parser.parse_args()
    served = 0
    done = asyncio.Event()

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await handle(reader, writer)
        served += 1
        if args.clients and served >= args.clients:
            done.set()

    server = await aiotcp.start_server(counted, args.host, args.port)
    print(f"listening on {args.host or '*'}:{server.port}", flush=True)
    async with server:
        if args.clients:
            await done.wait()
        else:
            await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
