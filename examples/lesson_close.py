"""Lesson 2: the four-way close, and who ends up in TIME-WAIT.

The client (host A) closes first: FIN-WAIT-1 (its FIN is out), FIN-WAIT-2 (the
server acknowledged it), TIME-WAIT (the server's FIN arrived and was acknowledged),
then CLOSED after 2*MSL (MSL is 0.5 s here; Linux: 2*MSL = 60 s). The server goes
CLOSE-WAIT (it knows the client is done) and, once it closes too, LAST-ACK -> CLOSED.

    sudo python examples/lesson_close.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio

import aiotcp
from aiotcp.demo.lesson import lesson, lesson_args
from aiotcp.stack import Stack


def main(pcap_dir: str = ".", ipv6: bool = False) -> None:
    with lesson("close", "Four-way close", pcap_dir, ipv6=ipv6) as les:

        async def server(stack: Stack) -> None:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(await reader.readline())
                await reader.read()  # the client's FIN: we are in CLOSE-WAIT now
                await asyncio.sleep(0.3)  # ... and stay there until we close too
                writer.close()

            async with await aiotcp.start_server(handle, port=80, stack=stack):
                await asyncio.sleep(2.0)

        async def client(stack: Stack) -> None:
            reader, writer = await aiotcp.open_connection(les.address(les.b), 80, stack=stack)
            writer.write(b"bye\n")
            await reader.readline()
            les.say("client closes first")
            writer.close()
            await asyncio.sleep(1.5)  # TIME-WAIT lasts 2*MSL = 1 s here

        les.play(server, client, msl=0.5)
        print("The FIN exchange as host A captured it:")
        les.show(les.captured(les.a)[-4:])


if __name__ == "__main__":
    main(*lesson_args())
