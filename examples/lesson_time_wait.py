"""Lesson 5: TIME-WAIT keeps the 4-tuple for 2*MSL, and refuses to reuse it early.

The client closes first from a fixed local port and lands in TIME-WAIT. A new
connection from the same port to the same server is refused (EADDRINUSE) while
TIME-WAIT lasts — a late duplicate segment of the old connection could otherwise
be taken for part of the new one. After 2*MSL (1 s here; 60 s on Linux) it works.

    sudo python examples/lesson_time_wait.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio

import aiotcp
from aiotcp.demo.lesson import lesson, lesson_args
from aiotcp.stack import Stack

PORT = 62000


def main(pcap_dir: str = ".", ipv6: bool = False) -> None:
    with lesson("time-wait", "TIME-WAIT and 4-tuple reuse", pcap_dir, ipv6=ipv6) as les:

        async def server(stack: Stack) -> None:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.read()
                writer.close()

            async with await aiotcp.start_server(handle, port=80, stack=stack):
                await asyncio.sleep(3.0)

        async def client(stack: Stack) -> None:
            local = (les.address(les.a), PORT)
            _, writer = await aiotcp.open_connection(
                les.address(les.b), 80, local_addr=local, stack=stack
            )
            writer.close()
            await asyncio.sleep(0.1)
            les.say(f"table: {[r['state'] for r in aiotcp.connections(stack)]}")
            try:
                await aiotcp.open_connection(les.address(les.b), 80, local_addr=local, stack=stack)
            except OSError as exc:
                les.say(f"reusing {local[0]}:{PORT} during TIME-WAIT: refused ({exc.strerror})")
            await asyncio.sleep(1.1)
            _, again = await aiotcp.open_connection(
                les.address(les.b), 80, local_addr=local, stack=stack
            )
            les.say(
                f"after 2*MSL the same 4-tuple connects: {again.get_extra_info('aiotcp').state}"
            )
            again.close()
            await asyncio.sleep(0.2)

        les.play(server, client, msl=0.5)


if __name__ == "__main__":
    main(*lesson_args())
