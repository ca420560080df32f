"""Lesson 4: simultaneous close — both FINs cross, both sides pass through CLOSING.

Each side closes at the same instant; a 100 ms delay each way (NFQUEUE on both
hosts) makes sure each FIN is still on the wire when the other side sends its own. Each
end then sees a FIN that does not acknowledge its own: FIN-WAIT-1 -> CLOSING, and
on the ACK of its FIN, CLOSING -> TIME-WAIT. Both ends wait 2*MSL (RFC 9293 §3.6).

    sudo python examples/lesson_simultaneous_close.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio
import time

import aiotcp
from aiotcp.demo.lesson import lesson, lesson_args
from aiotcp.stack import Stack
from aiotcp.testing.impair import impair


def main(pcap_dir: str = ".", ipv6: bool = False) -> None:
    with lesson("simultaneous-close", "Simultaneous close", pcap_dir, ipv6=ipv6) as les:
        close_at = time.monotonic() + 1.5  # both sides close at this moment

        async def close_on_cue(writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(close_at - time.monotonic())
            writer.close()
            await asyncio.sleep(1.2)  # watch TIME-WAIT (2*MSL = 0.6 s here)

        async def server(stack: Stack) -> None:
            done = asyncio.Event()

            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await close_on_cue(writer)
                done.set()

            async with await aiotcp.start_server(handle, port=80, stack=stack):
                await done.wait()

        async def client(stack: Stack) -> None:
            _, writer = await aiotcp.open_connection(les.address(les.b), 80, stack=stack)
            await close_on_cue(writer)

        # Delay what each host receives (AF_PACKET sends skip the sender's netfilter).
        with impair(les.a, delay=0.1, direction="in"), impair(les.b, delay=0.1, direction="in"):
            les.play(server, client, msl=0.3)
        print("The crossing FINs as host A captured them:")
        les.show(les.captured(les.a)[-4:])


if __name__ == "__main__":
    main(*lesson_args())
