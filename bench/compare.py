"""aiotcp against the Linux kernel on the same veth pair, in the same run.

Host B runs kernel servers (sink, source, echo).  Host A runs the *same* asyncio
client code twice: once over the kernel's TCP (``asyncio.open_connection``) and
once over aiotcp (``aiotcp.open_connection``), on asyncio's default loop and on
uvloop.  Each result is printed with its ratio to the kernel's.

    .venv/bin/python bench/compare.py [--size-mb 50] [--seconds 3] [--json out.json]

Bounded: every measurement stops at its byte count or its time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiotcp
from aiotcp.testing.loops import LOOP_KINDS, LoopKind, loop_factory, run
from aiotcp.testing.netns import kernel_echo_server, kernel_sink, kernel_source, two_hosts

SINK, SOURCE, ECHO = 9000, 9001, 9002
CHUNK = 1 << 16
Opener = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def bulk_send(open_: Opener, host: str, size: int) -> float:
    """MB/s writing ``size`` bytes and closing (the sink counts them)."""
    payload = bytes(CHUNK)
    _, writer = await open_(host, SINK)
    t0 = time.perf_counter()
    for _ in range(size // CHUNK):
        writer.write(payload)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    return size / (time.perf_counter() - t0) / 1e6


async def bulk_receive(open_: Opener, host: str, size: int) -> float:
    reader, writer = await open_(host, SOURCE)
    t0 = time.perf_counter()
    got = 0
    while chunk := await reader.read(1 << 20):
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    writer.close()
    assert got == size, f"received {got} of {size} bytes"
    return size / elapsed / 1e6


async def connections_per_second(open_: Opener, host: str, seconds: float) -> float:
    """Connect, one 64-byte request/response, close; as many as fit in ``seconds``."""
    msg = b"x" * 64
    count = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        reader, writer = await open_(host, ECHO)
        writer.write(msg)
        await reader.readexactly(64)
        writer.close()
        await writer.wait_closed()
        count += 1
    return count / (time.perf_counter() - t0)


async def echo_rtt(open_: Opener, host: str, rounds: int) -> tuple[float, float]:
    """p50 and p99 round-trip µs of 64-byte echoes on one connection (nodelay)."""
    reader, writer = await open_(host, ECHO)
    msg = b"y" * 64
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        writer.write(msg)
        await reader.readexactly(64)
        samples.append((time.perf_counter() - t0) * 1e6)
    writer.close()
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99)]


async def kernel_open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def aiotcp_open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await aiotcp.open_connection(host, port, nodelay=True)


def measure(kind: LoopKind, stack: str, host: str, args: argparse.Namespace) -> dict[str, Any]:
    open_: Opener = aiotcp_open if stack == "aiotcp" else kernel_open
    size = args.size_mb * 1024 * 1024

    async def main() -> dict[str, Any]:
        p50, p99 = await echo_rtt(open_, host, args.rounds)
        return {
            "send_MBps": await bulk_send(open_, host, size),
            "receive_MBps": await bulk_receive(open_, host, size),
            "conn_per_s": await connections_per_second(open_, host, args.seconds),
            "echo_p50_us": p50,
            "echo_p99_us": p99,
        }

    if stack == "aiotcp":
        return run(main, kind, timeout=300, msl=0.5)
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    results: dict[str, dict[str, Any]] = {}
    with two_hosts("bench") as (a, b), kernel_sink(b, SINK), kernel_source(b, SOURCE, size):
        with kernel_echo_server(b, ECHO), a.entered():
            for kind in LOOP_KINDS:
                for stack in ("kernel", "aiotcp"):
                    results[f"{stack}/{kind}"] = measure(kind, stack, b.address, args)
    print(f"{'metric':<14}{'loop':<9}{'kernel':>12}{'aiotcp':>12}{'ratio':>8}")
    for kind in LOOP_KINDS:
        k, t = results[f"kernel/{kind}"], results[f"aiotcp/{kind}"]
        for metric in k:
            ratio = t[metric] / k[metric] if k[metric] else float("nan")
            print(f"{metric:<14}{kind:<9}{k[metric]:>12.1f}{t[metric]:>12.1f}{ratio:>8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
