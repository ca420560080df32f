"""Lesson 1: the three-way handshake, with random initial sequence numbers.

Client (host A) and server (host B) both run aiotcp. Watch LISTEN -> SYN-RECEIVED
-> ESTABLISHED on the server and SYN-SENT -> ESTABLISHED on the client, then the
three segments themselves: SYN (seq=x), SYN-ACK (seq=y, ack=x+1), ACK (ack=y+1).
Each ISN comes from a keyed hash of the 4-tuple and a clock (RFC 6528), so an old
duplicate SYN from an earlier connection is not mistaken for a new one — and the
third segment is what lets the server tell (a two-way handshake could not).

    sudo python examples/lesson_handshake.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio

import aiotcp
from aiotcp.demo.lesson import lesson, lesson_args
from aiotcp.stack import Stack


def main(pcap_dir: str = ".", ipv6: bool = False) -> None:
    with lesson("handshake", "Three-way handshake", pcap_dir, ipv6=ipv6) as les:

        async def server(stack: Stack) -> None:
            async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(b"welcome\n")
                await writer.drain()

            async with await aiotcp.start_server(hello, port=80, stack=stack):
                await asyncio.sleep(1.0)

        async def client(stack: Stack) -> None:
            reader, writer = await aiotcp.open_connection(les.address(les.b), 80, stack=stack)
            les.say(f"client read {await reader.readline()!r}")
            writer.transport.abort()  # this lesson ends at ESTABLISHED

        les.play(server, client)
        print("The handshake as host A captured it:")
        les.show(les.captured(les.a)[:3])


if __name__ == "__main__":
    main(*lesson_args())
