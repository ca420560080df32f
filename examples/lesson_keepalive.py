"""Lesson 7: keepalive finds a peer that vanished without a word.

The client enables keepalive with short timers (idle 1 s, interval 0.5 s, 3
probes; Linux defaults are 7200 s / 75 s / 9). While the server lives, each probe
(an ACK one byte behind, carrying no data) is answered. Then host B goes silent
(every packet dropped): the unanswered probes run out and the client's read
fails with TimeoutError — without keepalive it would wait forever.

    sudo python examples/lesson_keepalive.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio
import threading
import time

import aiotcp
from aiotcp.demo.lesson import lesson, lesson_args
from aiotcp.stack import Stack
from aiotcp.testing.impair import iptables_drop

KEEPALIVE = {
    "keepalive": True,
    "keepalive_idle": 1.0,
    "keepalive_interval": 0.5,
    "keepalive_count": 3,
}


def main(pcap_dir: str = ".", ipv6: bool = False) -> None:
    with lesson("keepalive", "Keepalive finds a dead peer", pcap_dir, ipv6=ipv6) as les:
        silent = asyncio.Event()
        client_done = threading.Event()

        async def server(stack: Stack) -> None:
            async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.read()

            async with await aiotcp.start_server(handle, port=80, stack=stack) as srv:
                await asyncio.to_thread(client_done.wait, 30)
                srv.abort_clients()  # B never learns on its own: it has no keepalive
                await asyncio.sleep(0.1)

        async def client(stack: Stack) -> None:
            reader, writer = await aiotcp.open_connection(
                les.address(les.b), 80, stack=stack, **KEEPALIVE
            )
            await asyncio.sleep(2.8)
            probes = writer.get_extra_info("aiotcp").counters["keepalive_probes"]
            les.say(f"{probes} keepalive probes so far, all answered; now host B goes silent")
            silent.set()
            try:
                await reader.read()
            except TimeoutError as exc:
                les.say(f"client read failed: TimeoutError({exc})")

        serving = les.run_on(les.b, server)
        time.sleep(0.3)
        done = les.run_on(les.a, client)
        while not silent.is_set():
            time.sleep(0.05)
        with iptables_drop(les.b, probability=1.0):
            done.result(15)
        client_done.set()
        serving.result(15)
        print("Keepalive probes and answers as host A captured them:")
        pure_acks = [s for s in les.captured(les.a) if not s.seg.payload and s.seg.flags == 0x10]
        les.show(pure_acks[1:])  # after the handshake's ACK


if __name__ == "__main__":
    main(*lesson_args())
