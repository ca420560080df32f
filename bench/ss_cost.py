"""What reading the state table costs the program it watches.

Host B's kernel opens N connections to an aiotcp server on host A; the server's
stack has a control socket.  While a ticker task records the longest stretch the
server's event loop was held, the script reads the table three ways:
``aiotcp.connections()`` in-process, ``python -m aiotcp ss --json`` (every row)
and ``python -m aiotcp ss --port 1`` (a filter that matches nothing), and prints
for each the loop's longest stall, the wall time and the growth of the peak RSS.

    sudo .venv/bin/python bench/ss_cost.py [--connections 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiotcp
from aiotcp.testing.loops import run
from aiotcp.testing.netns import Host, idle_kernel_clients, read_line, two_hosts


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measured(what: Callable[[], Awaitable[object]]) -> dict[str, float]:
    """Run ``what`` while a ticker watches the loop: longest stall, wall, RSS growth."""
    loop = asyncio.get_running_loop()
    stalls = [0.0]
    running = True

    async def ticker() -> None:
        last = loop.time()
        while running:
            await asyncio.sleep(0)
            now = loop.time()
            stalls[0] = max(stalls[0], now - last)
            last = now

    rss0 = peak_rss_mb()
    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    t0 = time.perf_counter()
    await what()
    wall = time.perf_counter() - t0
    running = False
    await tick
    return {
        "longest_stall_ms": stalls[0] * 1000,
        "wall_ms": wall * 1000,
        "peak_rss_growth_mb": peak_rss_mb() - rss0,
    }


async def main_async(b: Host, a: Host, n: int) -> dict[str, Any]:
    async with await aiotcp.start_server(lambda r, w: None, port=8080, backlog=8192):
        clients = idle_kernel_clients(b, a.address, 8080, n)
        try:
            assert (await asyncio.to_thread(read_line, clients.stdout, 120)).strip() == "ready"
            while len(aiotcp.connections()) < n + 1:
                await asyncio.sleep(0.1)
            cli = [sys.executable, "-m", "aiotcp", "ss", "--pid", str(os.getpid()), "--json"]

            async def ss(*extra: str) -> None:
                # Its output is not read here: the rows would take this process's
                # memory, which is what the run measures.
                proc = await asyncio.create_subprocess_exec(
                    *cli, *extra, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
                assert await proc.wait() == 0

            async def table() -> None:
                aiotcp.connections()

            results = {
                "connections": n,
                "connections()": await measured(table),
                "ss": await measured(ss),
                "ss --port 1": await measured(lambda: ss("--port", "1")),
            }
        finally:
            b.stop(clients)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    with two_hosts("sscost") as (a, b):
        b.run(["sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 60999"])
        with a.entered():
            results = run(lambda: main_async(b, a, args.connections), timeout=600, control=True)
    for name, row in results.items():
        if isinstance(row, dict):
            cells = ", ".join(f"{k} {v:.1f}" for k, v in row.items())
            print(f"{name:<14} {cells}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
