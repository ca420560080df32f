"""Connections/s of ``reuse_port`` workers: 2 aiotcp workers against 1 (the scaling
factor) and against 2 kernel workers (asyncio over SO_REUSEPORT sockets).

    sudo .venv/bin/python bench/reuseport.py [--seconds 3] [--repeat 3] [--clients 2]
        [--concurrency 32] [--loop asyncio|uvloop|both] [--json F]

Host A runs the workers (``aiotcp.testing.echo_workers worker``, the same asyncio
echo handler over either stack, on the loop measured); host B runs ``--clients``
kernel client processes on uvloop, each with ``--concurrency`` connections in a
loop: connect, send 64 bytes, half-close, read the echo to EOF, close.  A case's
number is every client's completed connections over the time they ran.  In each
round the four cases run back to back in an order that alternates, and a ratio is
the median of the rounds' own ratios (docs/performance.md says why).  Each case
reports its processes' CPU (user + system, in cores): the clients share this
machine's two CPUs with the workers, so a client load that took a core of its own
would cap what two workers can show.

Bounded: each case runs ``--seconds``; traffic only between its own namespaces,
which go with every process when it ends.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time
from typing import Any

from aiotcp.testing.loops import LOOP_KINDS, LoopKind
from aiotcp.testing.netns import Host, read_line, sysctl, two_hosts

PORT = 8080
MODULE = "aiotcp.testing.echo_workers"
CASES = (("aiotcp", 1), ("aiotcp", 2), ("kernel", 1), ("kernel", 2))
_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system time of a live process (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_times() -> tuple[float, float, float]:
    """Seconds of all CPUs so far: busy (softirq included), idle, stolen by neighbours."""
    with open("/proc/stat") as f:
        fields = [int(v) / _TICKS for v in f.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq, idle + iowait, steal


def build_connload() -> pathlib.Path:
    """bench/connload.c, compiled once per source into aiotcp's cache directory."""
    source = pathlib.Path(__file__).with_name("connload.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    cache = os.environ.get("AIOTCP_CACHE_DIR") or pathlib.Path.home() / ".cache" / "aiotcp"
    binary = pathlib.Path(cache) / f"connload-{digest}"
    if not binary.exists():
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_name(f".{binary.name}.{os.getpid()}")
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(tmp), str(source)], check=True)
        os.replace(tmp, binary)
    return binary


def client_command(a: Host, args: argparse.Namespace) -> list[str]:
    """One client process: the C load, or (``--client python``) the checking
    asyncio clients on uvloop, which cost the machine about twice the CPU."""
    if args.client == "c":
        load = [str(build_connload()), a.address, str(PORT), str(args.concurrency)]
        return [*load, str(args.seconds), "64"]
    command = [sys.executable, "-m", MODULE, "clients", "--address", a.address]
    command += ["--port", str(PORT), "--seconds", str(args.seconds), "--size", "64"]
    return [*command, "--loop", "uvloop", "--concurrency", str(args.concurrency)]


def start_worker(a: Host, stack: str, loop: LoopKind) -> subprocess.Popen[str]:
    args = ["-m", MODULE, "worker", "--port", str(PORT), "--stack", stack, "--loop", loop]
    proc = a.python(args, stdout=subprocess.PIPE, text=True)
    assert read_line(proc.stdout, 30).startswith("ready"), "worker did not start"
    return proc


def measure(
    a: Host, b: Host, stack: str, workers: int, loop: LoopKind, args: argparse.Namespace
) -> dict[str, float]:
    """One case: connections/s, and the CPU of the workers and of the clients."""
    servers = [start_worker(a, stack, loop) for _ in range(workers)]
    try:
        time.sleep(0.2)  # the group settles (immediate; margin for a loaded machine)
        command = client_command(a, args)
        before = [cpu_seconds(p.pid) for p in servers]
        machine = machine_times()
        started = time.monotonic()
        clients = [b.popen(command, stdout=subprocess.PIPE, text=True) for _ in range(args.clients)]
        results = []
        for proc in clients:
            out, _ = proc.communicate(timeout=args.seconds + 60)
            results.append(json.loads(out.splitlines()[-1]))
        wall = time.monotonic() - started
        busy, idle, steal = (t1 - t0 for t0, t1 in zip(machine, machine_times(), strict=True))
        worker_cpu = sum(cpu_seconds(p.pid) for p in servers) - sum(before)
        client_cpu = sum(r.get("cpu", 0.0) for r in results)
    finally:
        for proc in servers:
            a.stop(proc)
    done = sum(r["ok"] for r in results)
    failed = sum(r["failed"] for r in results)
    seconds = max(r["seconds"] for r in results)
    return {
        "conns_per_s": done / seconds,
        "failed": failed,
        "worker_cores": worker_cpu / wall,
        "client_cores": client_cpu / seconds,
        "machine_busy_cores": busy / wall,
        "machine_idle_cores": idle / wall,
        "stolen_cores": steal / wall,
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    loops: tuple[LoopKind, ...] = LOOP_KINDS if args.loop == "both" else (args.loop,)
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {kind: [] for kind in loops}
    with two_hosts("rpbench") as (a, b):
        # Tens of thousands of client connections leave as many TIME-WAITs in B.
        sysctl(b, "net.ipv4.tcp_tw_reuse", "1")
        sysctl(b, "net.ipv4.ip_local_port_range", "10000 60999")
        for r in range(args.repeat):
            for kind in loops:
                order = CASES if r % 2 == 0 else CASES[::-1]
                sample = {}
                for stack, n in order:
                    sample[f"{stack}x{n}"] = measure(a, b, stack, n, kind, args)
                    print(f"round {r + 1} {kind} {stack}x{n}: {sample[f'{stack}x{n}']}", flush=True)
                rounds[kind].append(sample)
    return {kind: summary(samples) for kind, samples in rounds.items()}


def summary(samples: list[dict[str, dict[str, float]]]) -> dict[str, Any]:
    def median(case: str, metric: str = "conns_per_s") -> float:
        return statistics.median(s[case][metric] for s in samples)

    def ratio(num: str, den: str) -> float:
        return statistics.median(s[num]["conns_per_s"] / s[den]["conns_per_s"] for s in samples)

    cases = [f"{stack}x{n}" for stack, n in CASES]
    return {
        "conns_per_s": {c: round(median(c)) for c in cases},
        "worker_cores": {c: round(median(c, "worker_cores"), 2) for c in cases},
        "client_cores": {c: round(median(c, "client_cores"), 2) for c in cases},
        "machine_busy_cores": {c: round(median(c, "machine_busy_cores"), 2) for c in cases},
        "machine_idle_cores": {c: round(median(c, "machine_idle_cores"), 2) for c in cases},
        "stolen_cores": {c: round(median(c, "stolen_cores"), 2) for c in cases},
        "failed": {c: sum(int(s[c]["failed"]) for s in samples) for c in cases},
        "aiotcp_scaling_2_over_1": round(ratio("aiotcpx2", "aiotcpx1"), 2),
        "kernel_scaling_2_over_1": round(ratio("kernelx2", "kernelx1"), 2),
        "aiotcp_over_kernel_2_workers": round(ratio("aiotcpx2", "kernelx2"), 2),
        "aiotcp_over_kernel_1_worker": round(ratio("aiotcpx1", "kernelx1"), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2, help="client processes in host B")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    parser.add_argument("--loop", choices=["asyncio", "uvloop", "both"], default="both")
    parser.add_argument(
        "--client",
        choices=["c", "python"],
        default="c",
        help="the load: bench/connload.c or asyncio",
    )
    parser.add_argument("--json", help="write the summary here")
    args = parser.parse_args()
    report = run_benchmark(args)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
