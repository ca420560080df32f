"""Echo client on aiotcp: send lines, print what comes back, half-close, read to EOF.

sudo python examples/echo_client.py 198.18.0.2 7000 hello world
"""

from __future__ import annotations

import argparse
import asyncio

import aiotcp


async def main() -> None:
    parser = argparse.ArgumentParser(description="aiotcp echo client")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("words", nargs="+")
    args = parser.parse_args()
    reader, writer = await aiotcp.open_connection(args.host, args.port)
    local = writer.get_extra_info("sockname")
    print(f"connected from {local[0]}:{local[1]}", flush=True)
    for word in args.words:
        writer.write(word.encode() + b"\n")
        await writer.drain()
        print("echo:", (await reader.readline()).decode().rstrip(), flush=True)
    writer.write_eof()  # FIN: we are done sending, the server finishes and closes
    rest = await reader.read()
    print(f"server closed (extra bytes: {len(rest)})", flush=True)
    writer.close()
    await writer.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
