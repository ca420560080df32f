"""Lesson 6: a SYN flood against the backlog, without and with SYN cookies.

Host A floods host B's aiotcp server (backlog 8) with spoofed SYNs (sources in
198.19.0.0/16, routed back into A where the SYN-ACKs die). Without cookies the
half-open connections pile up in SYN-RECEIVED until the SYN queue is full — the
tutorials' ``netstat -nap | grep SYN_RECV`` — and a real client cannot get in.
With cookies the server answers overflowing SYNs statelessly, encoding what it
needs in its ISN, and the real client connects.

    sudo python examples/lesson_syn_flood.py [PCAP_DIR]
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import aiotcp
from aiotcp.demo.lesson import Lesson, lesson
from aiotcp.stack import Stack


def round_(les: Lesson, cookies: bool) -> None:
    async def server(stack: Stack) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"hi\n")
            await writer.drain()
            writer.close()

        async with await aiotcp.start_server(
            handle, port=80, backlog=8, syn_cookies=cookies, stack=stack
        ):
            await asyncio.sleep(1.0)  # the flood is under way
            half_open = [r for r in aiotcp.connections(stack) if r["state"] == "SYN-RECEIVED"]
            listener = next(r for r in aiotcp.connections(stack) if r["state"] == "LISTEN")
            les.say(
                f"during the flood: {len(half_open)} connections in SYN-RECEIVED "
                f"(backlog 8), {listener['counters']['cookies_sent']} cookies sent"
            )
            await asyncio.sleep(2.0)

    def real_client() -> str:
        try:
            with socket.create_connection((les.b.address, 80), timeout=1.5) as s:
                return f"connected and read {s.recv(10)!r}"
        except OSError as exc:
            return f"failed: {exc}"

    serving = les.run_on(les.b, server, narrate=False)  # thousands of half-open entries
    time.sleep(0.2)
    flood = les.a.python(
        ["-m", "aiotcp.testing.fuzz", "synflood", "--dst", les.b.address, "--listen-port", "80",
         "--src-net", "198.19.0.0/16", "--rate", "3000", "--seconds", "2.5", "--count", "100000"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.5)
    les.say(f"a real client (kernel TCP on host A): {les.a.call(real_client)}")
    flood.wait(10)
    serving.result(10)


def main(pcap_dir: str = ".") -> None:
    with lesson("syn-flood", "SYN flood against the backlog", pcap_dir) as les:
        les.b.run(["ip", "route", "add", "198.19.0.0/16", "via", les.a.address])
        les.say("-- without SYN cookies --")
        round_(les, cookies=False)
        les.say("-- with SYN cookies --")
        round_(les, cookies=True)


if __name__ == "__main__":
    main(*sys.argv[1:2])
