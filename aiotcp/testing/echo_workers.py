"""Echo servers that share a port with ``reuse_port``, and kernel clients that
check every byte: the reuse_port interop tests and ``bench/reuseport.py``.

``python -m aiotcp.testing.echo_workers worker --port 8080 [--stack kernel]``
serves until SIGTERM, printing ``ready <pid>`` when it listens and a JSON report
(connections served, bytes echoed, its group) on SIGUSR1 and when it ends.

``python -m aiotcp.testing.echo_workers clients --address A --port P --count N``
opens N connections over the kernel, ``--concurrency`` at a time; each sends a
payload of its own, half-closes and checks the echo byte for byte.  It prints one
JSON line: how many were right, the first failures, the time taken and its CPU.
``--seconds T`` instead runs connections of ``--size`` bytes for T seconds
(connections per second, for the bench).

``python -m aiotcp.testing.echo_workers hold --address A --port P --count N``
opens N connections and echoes one message on each, prints ``connected``, and
after a line on its stdin echoes a second message on each and closes them: the
test of connections that outlive a change in the group.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiotcp.testing.loops import LoopKind, loop_factory


def payload(seed: int, index: int, max_size: int = 16384) -> bytes:
    """Connection ``index``'s bytes: its number, then a size and content of its own."""
    rng = random.Random(seed * 1_000_003 + index)
    return f"{seed}:{index}:".encode() + rng.randbytes(rng.randrange(1, max_size))


# -- the worker -------------------------------------------------------------------
class EchoWorker:
    """What one worker served: every connection it accepted, every byte it echoed."""

    def __init__(self) -> None:
        self.served = 0
        self.echoed = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.served += 1
        try:
            while data := await reader.read(65536):
                self.echoed += len(data)
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def serve(port: int, host: str | None, stack: str) -> None:
    worker = EchoWorker()
    if stack == "kernel":
        server: asyncio.AbstractServer = await asyncio.start_server(
            worker.handle, host, port, reuse_port=True, backlog=1024
        )
        aiotcp_stack = None
    else:
        import aiotcp

        server = await aiotcp.start_server(worker.handle, host, port, reuse_port=True, backlog=1024)
        aiotcp_stack = aiotcp.get_stack()

    def report() -> None:
        info: dict[str, Any] = {"pid": os.getpid(), "served": worker.served}
        info["echoed"] = worker.echoed
        if aiotcp_stack is not None:
            group = aiotcp_stack.groups.get(port)
            info["group"] = group.info() if group is not None else None
            info["rst_withheld"] = aiotcp_stack.counters["reuseport_rst_withheld"]
            info["counters"] = dict(aiotcp_stack.counters)
        print(json.dumps(info), flush=True)

    loop = asyncio.get_running_loop()
    stopped = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, report)
    loop.add_signal_handler(signal.SIGTERM, _finish, stopped)
    print("ready", os.getpid(), flush=True)
    await stopped
    report()
    server.close()


def _finish(stopped: asyncio.Future[None]) -> None:
    if not stopped.done():
        stopped.set_result(None)


# -- the clients --------------------------------------------------------------------
async def one_echo(address: str, port: int, data: bytes, timeout: float) -> bytes:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    try:
        writer.write(data)
        writer.write_eof()
        chunks = []
        while chunk := await asyncio.wait_for(reader.read(65536), timeout):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        writer.close()


async def clients(args: argparse.Namespace) -> dict[str, Any]:
    """``count`` checked echoes, or as many ``size``-byte echoes as ``seconds`` allow."""
    gate = asyncio.Semaphore(args.concurrency)
    bad: list[str] = []
    ok = 0
    start, cpu = time.monotonic(), time.process_time()
    deadline = start + args.seconds if args.seconds else None
    fixed = b"x" * args.size

    async def run(index: int) -> None:
        nonlocal ok
        data = payload(args.seed, index) if deadline is None else fixed
        try:
            got = await one_echo(args.address, args.port, data, args.timeout)
        except (OSError, TimeoutError) as exc:
            bad.append(f"{index}: {exc!r}")
            return
        if got == data:
            ok += 1
        else:
            bad.append(f"{index}: {len(got)} bytes back of {len(data)}")

    if deadline is None:

        async def gated(index: int) -> None:
            async with gate:
                await run(index)

        await asyncio.gather(*(gated(i) for i in range(args.count)))
    else:

        async def lane(lane_index: int) -> None:
            index = lane_index
            while time.monotonic() < deadline:
                await run(index)
                index += args.concurrency

        await asyncio.gather(*(lane(i) for i in range(args.concurrency)))
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    return {"ok": ok, "failed": len(bad), "first_failures": bad[:5], "seconds": seconds, "cpu": cpu}


async def hold(args: argparse.Namespace) -> dict[str, Any]:
    """Connections open across a change of the group, checked before and after."""
    conns = []
    for _ in range(args.count):
        conns.append(await asyncio.open_connection(args.address, args.port))

    async def round_trip(index: int, tag: bytes) -> bool:
        reader, writer = conns[index]
        data = tag + payload(args.seed, index, 2048)
        writer.write(data)
        got = await asyncio.wait_for(reader.readexactly(len(data)), args.timeout)
        return got == data

    first = await asyncio.gather(*(round_trip(i, b"1") for i in range(args.count)))
    print("connected", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    results = await asyncio.gather(
        *(round_trip(i, b"2") for i in range(args.count)), return_exceptions=True
    )
    for _, writer in conns:
        writer.close()
    failures = [repr(r) for r in results if r is not True]
    return {"ok": sum(first) + sum(r is True for r in results), "first_failures": failures[:5]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aiotcp.testing.echo_workers")
    parser.add_argument("mode", choices=["worker", "clients", "hold"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--address", default="")
    parser.add_argument("--host", default=None, help="the worker's listening address")
    parser.add_argument("--stack", choices=["aiotcp", "kernel"], default="aiotcp")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    kind: LoopKind = args.loop
    job: Callable[[], Awaitable[Any]]
    if args.mode == "worker":
        job = lambda: serve(args.port, args.host, args.stack)  # noqa: E731
    elif args.mode == "clients":
        job = lambda: clients(args)  # noqa: E731
    else:
        job = lambda: hold(args)  # noqa: E731
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        result = runner.run(job())
    if result is not None:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
