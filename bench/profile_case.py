"""Where aiotcp's time goes: one benchmark case under cProfile, in-process.

Builds the same two namespaces and server as bench.py, runs one client case over
aiotcp under ``cProfile`` on the chosen loop, and prints the top functions by own
time (and writes a ``.prof`` for snakeviz/pstats).  The issue-7 notes quote these
profiles to say where the floor is.

    .venv/bin/python bench/profile_case.py send|receive|to_same|conn|echo [--size-mb 100]
        [--loop asyncio|uvloop] [--out /tmp/aiotcp.prof] [--top 30] [--nic-like | --wire]
        [--family ipv4|ipv6] [--no-offload]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import time

import aiotcp
from aiotcp.testing.loops import LOOP_KINDS, loop_factory
from aiotcp.testing.netns import steer_receive, two_hosts

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import bench  # bench.py next to this file

CASES = ("send", "receive", "to_same", "conn", "echo")


def case(name: str, host: str, args: argparse.Namespace) -> object:
    size = args.size_mb * 1024 * 1024
    open_ = bench.kernel_open if args.kernel else bench.aiotcp_open
    if name == "send":
        return bench.bulk_send(open_, host, bench.KERNEL_BASE + bench.SINK, size)
    if name == "receive":
        return bench.bulk_receive(open_, host, bench.KERNEL_BASE + bench.SOURCE, size)
    if name == "to_same":
        return bench.bulk_send(open_, host, bench.AIOTCP_BASE + bench.SINK, size)
    if name == "conn":
        return bench.connections_per_second(
            open_, host, bench.KERNEL_BASE + bench.ECHO, args.seconds
        )
    return bench.echo_rtt(open_, host, bench.KERNEL_BASE + bench.ECHO, args.rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--loop", choices=LOOP_KINDS, default="asyncio")
    parser.add_argument("--out", default="/tmp/aiotcp.prof")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-profile", action="store_true", help="time it only")
    parser.add_argument("--no-gso", action="store_true", help="Stack(gso=False)")
    parser.add_argument("--kernel", action="store_true", help="the same case over the kernel")
    parser.add_argument("--guard", choices=("iptables", "socket"), default="iptables")
    parser.add_argument("--pin", action="store_true", help="client on CPU 0, server on CPU 1")
    parser.add_argument("--steer", action="store_true", help="as bench.py --steer (needs --pin)")
    parser.add_argument("--counters", action="store_true", help="print the stack's counters")
    parser.add_argument("--family", choices=("ipv4", "ipv6"), default="ipv4")
    parser.add_argument("--warmup", type=int, default=0, help="untimed runs of the case first")
    parser.add_argument(
        "--nic-like",
        action="store_true",
        help="the link as a NIC delivers: B computes checksums, A aggregates (GRO)",
    )
    parser.add_argument(
        "--wire", action="store_true", help="--nic-like, and aiotcp takes A's veth for a wire"
    )
    parser.add_argument(
        "--no-offload",
        action="store_true",
        help="TSO/GSO/GRO off on both ends: every segment arrives on its own, as through "
        "bench/congestion.py's impairer",
    )
    parser.add_argument(
        "--kernel-cc", default=bench.KERNEL_CC, help="kernel sockets' congestion control"
    )
    args = parser.parse_args()
    if args.steer and not args.pin:
        parser.error("--steer needs --pin")
    bench.KERNEL_CC = bench.congestion_control_arg(args.kernel_cc)
    size = args.size_mb * 1024 * 1024
    cpu: list[float] = []

    async def timed(host: str) -> object:
        """The case itself, with the client process's CPU seconds around it only."""
        for _ in range(args.warmup):  # as bench.py: a process's first transfers run cold
            await case(args.case, host, args)  # type: ignore[misc]
        c0 = os.times()
        result = await case(args.case, host, args)  # type: ignore[misc]
        c1 = os.times()
        cpu[:] = [c1.user - c0.user, c1.system - c0.system]
        return result

    with two_hosts("prof", ipv6=args.family == "ipv6", offload=not args.no_offload) as (a, b):
        if args.nic_like or args.wire:
            b.run(["ethtool", "-K", b.ifname, "tx", "off"])
            a.run(["ethtool", "-K", a.ifname, "gro", "on"])
        server = bench.start_server(b, size, args.loop)
        if args.pin:  # the server on one CPU, this client on the other
            os.sched_setaffinity(server.pid, {1})
            os.sched_setaffinity(0, {0})
            if args.steer:
                steer_receive(a, 0)
                steer_receive(b, 1)
        try:
            with a.entered():

                async def run() -> object:
                    if args.kernel:  # no Stack: its raw socket would see the kernel's segments
                        return await timed(b.address_of(args.family))
                    async with aiotcp.Stack(
                        ephemeral_range=(20000, 65535),
                        gso=not args.no_gso,
                        guard=args.guard,
                        wire_interfaces=[a.ifname] if args.wire else None,
                    ) as stack:
                        result = await timed(b.address_of(args.family))
                        if args.counters:
                            print(dict(sorted(stack.counters.items())))
                        return result

                prof = cProfile.Profile()
                with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
                    t0 = time.perf_counter()
                    if args.no_profile:
                        result = runner.run(run())
                    else:
                        result = prof.runcall(runner.run, run())
                    elapsed = time.perf_counter() - t0
        finally:
            b.stop(server)
    user, system = cpu
    line = f"{args.case} on {args.loop}: {result}"
    line += f" ({elapsed:.1f} s; client CPU user {user:.2f} s, system {system:.2f} s"
    if args.case in ("send", "receive", "to_same"):
        line += f", {(user + system) * 1e6 / args.size_mb:.0f} µs per MiB"
    print(line + ")")
    if not args.no_profile:
        prof.dump_stats(args.out)
        pstats.Stats(args.out).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
