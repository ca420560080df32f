"""What each way of delaying packets costs: kernel→kernel cubic through each impairer.

    .venv/bin/python bench/impairer.py [--size 300M] [--delay-ms 0,20] [--repeat 2]
                                       [--impairers bare,python,c-seg,c-gso]

Host A sends ``--size`` bytes with kernel cubic to a discarding kernel reader on
host B over a veth (offloads on, as bench/congestion.py builds it); the impairer sits
on B's input, TCP only, as in bench/congestion.py. For each impairer and one-way
delay: goodput (bytes / seconds from the first byte written until the reader's FIN),
the CPU the impairer's process used, and the CPU the whole machine used (all
processes and softirqs, from ``/proc/stat``), both per second of transfer, plus the
time the
TCP handshake took through it (SYN delayed, SYN-ACK not).

* ``bare``: no impairer (the ceiling; a delay cannot be applied, so only 0 ms);
* ``python``: ``aiotcp.testing.impair.impair`` (the NFQUEUE helper in Python);
* ``c-seg``: ``aiotcp.testing.fastimpair.fast_impair(gso=False)``, every wire segment
  queued and decided on its own;
* ``c-gso``: the same with ``gso=True``, GSO/GRO aggregates queued whole (delay only).

Needs root (namespaces, iptables, NFQUEUE).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from aiotcp.testing.fastimpair import fast_impair
from aiotcp.testing.impair import impair
from aiotcp.testing.netns import Host, read_line, sysctl, two_hosts

PORT = 5201
PREFIX = "bi"

SINK = r"""
import socket, sys
ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", int(sys.argv[1]))); ls.listen(1)
print("ready", flush=True)
conn, _ = ls.accept()
buf, n = bytearray(1 << 20), 0
while k := conn.recv_into(buf):
    n += k
conn.close()
print(n, flush=True)
"""

SOURCE = r"""
import socket, sys, time
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = time.monotonic()
s = socket.create_connection((addr, port))
handshake = time.monotonic() - t
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"cubic")
chunk = memoryview(bytes(1 << 20))
t0, left = time.monotonic(), size
while left:
    left -= s.send(chunk[: min(left, len(chunk))])
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
print(time.monotonic() - t0, handshake, flush=True)
"""

Impairer = Callable[[Host, float], AbstractContextManager[object]]

IMPAIRERS: dict[str, Impairer] = {
    "bare": lambda host, delay: contextlib.nullcontext(),
    "python": lambda host, delay: impair(host, delay=delay, direction="in", proto="tcp"),
    "c-seg": lambda host, delay: fast_impair(host, delay=delay, proto="tcp", gso=False),
    "c-gso": lambda host, delay: fast_impair(host, delay=delay, proto="tcp", gso=True),
}


def busy_ticks() -> int:
    """Busy jiffies of the whole machine (everything but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4]


def proc_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def helper_pid(imp: object) -> int | None:
    return getattr(imp, "pid", None)


def measure(name: str, delay: float, size: int, buffers: int) -> dict[str, float]:
    hz = os.sysconf("SC_CLK_TCK")
    with two_hosts(PREFIX) as (a, b), IMPAIRERS[name](b, delay) as imp:
        for host in (a, b):
            for key, default in (("tcp_rmem", 131072), ("tcp_wmem", 16384)):
                if buffers:
                    sysctl(host, f"net.ipv4.{key}", f"4096 {default} {buffers}")
        sink = b.python(["-c", SINK, str(PORT)], stdout=subprocess.PIPE, text=True)
        read_line(sink.stdout, 10.0)
        pid = helper_pid(imp)
        h0, m0, t0 = proc_ticks(pid) if pid else 0, busy_ticks(), time.monotonic()
        src = a.python(["-c", SOURCE, b.address, str(PORT), str(size)], stdout=subprocess.PIPE)
        out, _ = src.communicate(timeout=300)
        wall = time.monotonic() - t0
        h1, m1 = proc_ticks(pid) if pid else 0, busy_ticks()
        got = int(read_line(sink.stdout, 10.0))
        seconds, handshake = (float(x) for x in out.split())
    if got != size:
        raise RuntimeError(f"{name}: sink got {got} of {size} bytes")
    return {
        "mbps": size / seconds / 1e6,
        "helper_cpu": (h1 - h0) / hz / wall,
        "machine_cpu": (m1 - m0) / hz / wall,
        "rtt_ms": handshake * 1000,
    }


def parse_size(text: str) -> int:
    units = {"K": 1000, "M": 1000_000, "G": 1000_000_000}
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("300M"))
    parser.add_argument("--delay-ms", default="0,20")
    parser.add_argument(
        "--buffers",
        type=parse_size,
        default=0,
        help="tcp_rmem/tcp_wmem maximum in both hosts (default: leave the kernel's)",
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--impairers", default=",".join(IMPAIRERS))
    args = parser.parse_args(argv)
    delays = [float(x) for x in args.delay_ms.split(",")]
    print("| impairer | one-way delay | MB/s | impairer CPU | machine CPU (of 2) | handshake ms |")
    print("|---|---|---|---|---|---|")
    for name in args.impairers.split(","):
        for delay_ms in delays:
            if name == "bare" and delay_ms:
                continue
            runs = [
                measure(name, delay_ms / 1000, args.size, args.buffers) for _ in range(args.repeat)
            ]
            best = max(runs, key=lambda r: r["mbps"])
            mbps = " / ".join(f"{r['mbps']:.0f}" for r in runs)
            print(
                f"| {name} | {delay_ms:g} ms | {mbps} | {best['helper_cpu']:.0%}"
                f" | {best['machine_cpu']:.2f} | {best['rtt_ms']:.2f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
