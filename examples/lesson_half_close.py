"""Lesson 3: half-close — "I am done sending" is not "I am done".

The client sends its request and then ``write_eof()``: a FIN. It is now in
FIN-WAIT-2 (its FIN acknowledged) but keeps reading: the server answers in
several pieces after seeing EOF, and only then closes its side.

    sudo python examples/lesson_half_close.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio

import aiotcp
from aiotcp.demo.lesson import lesson, lesson_args
from aiotcp.stack import Stack


def main(pcap_dir: str = ".", ipv6: bool = False) -> None:
    with lesson("half-close", "Half-close", pcap_dir, ipv6=ipv6) as les:

        async def server(stack: Stack) -> None:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                request = await reader.read()  # everything, up to the client's FIN
                les.say(f"server got {request!r} and EOF; it still sends")
                for i in range(5):
                    writer.write(f"part {i} of the answer\n".encode())
                    await writer.drain()
                    await asyncio.sleep(0.1)
                writer.close()

            async with await aiotcp.start_server(handle, port=80, stack=stack):
                await asyncio.sleep(2.0)

        async def client(stack: Stack) -> None:
            reader, writer = await aiotcp.open_connection(les.address(les.b), 80, stack=stack)
            writer.write(b"the whole request")
            writer.write_eof()
            while line := await reader.readline():
                state = writer.get_extra_info("aiotcp").state
                les.say(f"client read {line.decode().strip()!r} in {state}")
            writer.close()
            await asyncio.sleep(0.3)

        les.play(server, client, msl=0.2)


if __name__ == "__main__":
    main(*lesson_args())
