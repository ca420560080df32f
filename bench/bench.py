"""aiotcp against the Linux kernel on the same veth pair, in the same run.

Builds two namespaces. Host B runs bench/server.py: the same asyncio handlers
(sink, source, echo, a keep-alive HTTP responder) served over the kernel and over
aiotcp. Host A runs the same
client code twice — over the kernel (``asyncio.open_connection``) and over aiotcp
— on asyncio's default loop and on uvloop, and prints each result with its ratio
to the kernel's:

- bulk MB/s: aiotcp->kernel, kernel->aiotcp, aiotcp->aiotcp vs kernel->kernel;
- the client process's CPU (user + system µs) per MiB sent and received: steal
  time on a shared machine moves throughput, much less what a MiB costs;
- kernel->aiotcp again, against the kernel with aiotcp's ``StreamReader`` on the
  same socket transport (``recv_same_reader_MBps``): aiotcp's streams read with
  fewer copies than asyncio's, and this row shows what is left once the kernel's
  side may use that reader too;
- connections/s (connect, one 64-byte request/response, close) for ``--seconds``;
- 64-byte echo round trip p50/p99 in µs;
- Python memory per idle established connection (1,000 of them; tracemalloc, so
  for the kernel this leaves out its socket buffers);
- the server's side: ``wrk -t1 -c50`` keep-alive requests/s and latency p50/p99
  from A against the HTTP handler in B (``wrk_*``; the client side is the
  kernel's for both).

    .venv/bin/python bench/bench.py [--size-mb 200] [--seconds 5] [--repeat 5] [--json F]
        [--quick] [--no-pin] [--steer] [--family ipv4|ipv6|both]

Each number is the median of ``--repeat`` rounds.  Within a round every case
(send, receive, ...) runs over both stacks back to back, in alternating order, and
a ratio is taken between those two halves, seconds apart: a slow phase of this
shared machine then hits both.

``--steer`` makes the pair behave like two machines: by default a veth runs the
receiving host's kernel work (IP, TCP, ACK generation) in the *sender's* softirq,
on the sender's CPU.  The kernel's receiver then does its TCP work on the other
host's CPU, while aiotcp's ACKs, sent from its own process, pull the sender's
transmit and its own receive path onto its CPU.  RPS on each veth puts each
host's receive processing on its own process's CPU, for both stacks alike.

Bounded: each measurement stops at its byte count or time limit; traffic only
between its own namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import pathlib
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiotcp
from aiotcp.stream_reader import StreamReader
from aiotcp.testing.loops import LOOP_KINDS, LoopKind, loop_factory
from aiotcp.testing.netns import Host, read_line, steer_receive, sysctl, two_hosts

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import allocator  # noqa: E402  (bench/allocator.py, next to this file)
from options_arg import add_option_argument  # noqa: E402

KERNEL_BASE, AIOTCP_BASE = 9000, 9100
SINK, SOURCE, ECHO, HTTP = 0, 1, 2, 3
WARMUP_BYTES = 32 * 1024 * 1024
Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
Sample = dict[str, float]


#: The kernel sockets' congestion control (``--kernel-cc``): aiotcp's own default,
#: so both stacks run the same algorithm; None leaves the host's default.
KERNEL_CC: str | None = aiotcp.TcpOptions().congestion


def use_congestion_control(sock: socket.socket, name: str | None) -> None:
    """``TCP_CONGESTION`` on a kernel socket (root may pick any loaded algorithm).

    Why: a host whose default is BBR paces its kernel senders on veth to about
    half of what cubic reaches (1,400-1,600 against 2,900-4,600 MB/s measured here),
    and a ratio against that says more about BBR's pacing than about aiotcp.
    """
    if name is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, name.encode())


def congestion_control_arg(value: str) -> str | None:
    """``--kernel-cc``'s value: an algorithm's name, or None for ``default``."""
    return None if value == "default" else value


def congestion_control_of(sock: socket.socket) -> str:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).rstrip(b"\0").decode()


async def kernel_open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    # asyncio's own connect (uvloop's is compiled): a socket made here and handed
    # over halved uvloop's connections/s.  The algorithm can change after the
    # handshake; it has sent no data yet.
    reader, writer = await asyncio.open_connection(host, port)
    return tuned(reader, writer)


def tuned(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    use_congestion_control(sock, KERNEL_CC)
    return reader, writer


async def kernel_open_aiotcp_reader(
    host: str, port: int
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection``'s own steps, with aiotcp's reader on the kernel socket."""
    loop = asyncio.get_running_loop()
    reader = StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await loop.create_connection(lambda: protocol, host, port)
    return tuned(reader, asyncio.StreamWriter(transport, protocol, reader, loop))


async def aiotcp_open(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await aiotcp.open_connection(host, port, nodelay=True)


async def bulk_send(open_: Opener, host: str, port: int, size: int) -> float:
    block = bytes(1 << 16)
    reader, writer = await open_(host, port)
    t0 = time.perf_counter()
    for _ in range(size // len(block)):
        writer.write(block)
        await writer.drain()
    writer.write_eof()
    confirmed = int(await reader.readline())  # the sink counted every byte
    elapsed = time.perf_counter() - t0
    writer.close()
    assert confirmed == size // len(block) * len(block), f"sink got {confirmed} bytes"
    return confirmed / elapsed / 1e6


async def bulk_receive(open_: Opener, host: str, port: int, size: int) -> float:
    reader, writer = await open_(host, port)
    t0 = time.perf_counter()
    got = 0
    while chunk := await reader.read(1 << 20):
        got += len(chunk)
    elapsed = time.perf_counter() - t0
    writer.close()
    assert got == size // (1 << 16) * (1 << 16), f"received {got} bytes"
    return got / elapsed / 1e6


async def connections_per_second(open_: Opener, host: str, port: int, seconds: float) -> float:
    msg = b"x" * 64
    count = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        reader, writer = await open_(host, port)
        writer.write(msg)
        await reader.readexactly(64)
        writer.close()
        await writer.wait_closed()
        count += 1
    return count / (time.perf_counter() - t0)


async def echo_rtt(open_: Opener, host: str, port: int, rounds: int) -> tuple[float, float]:
    reader, writer = await open_(host, port)
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


async def idle_memory(open_: Opener, host: str, port: int, n: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    conns = []
    for i in range(0, n, 100):
        conns += await asyncio.gather(*(open_(host, port) for _ in range(min(100, n - i))))
    await asyncio.sleep(0.3)
    gc.collect()
    per = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    for _, writer in conns:
        writer.close()
    await asyncio.sleep(0.3)
    return per


@contextlib.contextmanager
def client_cpu(out: dict[str, float], metric: str, size: int) -> Iterator[None]:
    """This client's CPU (user + system, all threads) per MiB moved, into ``out[metric]``.

    Throughput on this shared machine moves with its neighbours' load (steal time
    is not ours); the CPU a transfer costs the client moves much less.  It includes
    the kernel work billed to the process (softirqs run inside its system calls).
    """
    t0 = time.process_time()  # ns clock; os.times() counts 10 ms ticks
    yield
    out[metric] = (time.process_time() - t0) * 1e6 / (size / (1 << 20))


async def bulk_with_cpu(direction: str, transfer: Awaitable[float], size: int) -> Sample:
    """MB/s of one bulk transfer and the client's CPU per MiB during it."""
    out: Sample = {}
    with client_cpu(out, f"{direction}_cpu_us_MiB", size):
        out[f"{direction}_MBps"] = await transfer
    return out


async def case_send(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    size = args.size_mb << 20
    return await bulk_with_cpu("send", bulk_send(open_, host, KERNEL_BASE + SINK, size), size)


async def case_receive(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    size = args.size_mb << 20
    transfer = bulk_receive(open_, host, KERNEL_BASE + SOURCE, size)
    return await bulk_with_cpu("receive", transfer, size)


async def case_same_reader(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    # aiotcp's streams already use that reader: its side is one more receive.
    reader_open = kernel_open_aiotcp_reader if open_ is kernel_open else open_
    size = args.size_mb * 1024 * 1024
    return {
        "recv_same_reader_MBps": await bulk_receive(reader_open, host, KERNEL_BASE + SOURCE, size)
    }


async def case_to_same(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    # The same client against a server of its own kind: aiotcp<->aiotcp, kernel<->kernel.
    return {"to_same_MBps": await bulk_send(open_, host, own + SINK, args.size_mb << 20)}


async def case_connections(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    return {
        "conn_per_s": await connections_per_second(open_, host, KERNEL_BASE + ECHO, args.seconds)
    }


async def case_echo(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    p50, p99 = await echo_rtt(open_, host, KERNEL_BASE + ECHO, args.rounds)
    return {"echo_p50_us": p50, "echo_p99_us": p99}


async def case_idle(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    return {"idle_bytes_per_conn": await idle_memory(open_, host, own + ECHO, args.idle)}


async def case_wrk(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    """The server side: ``wrk -t1 -c50`` (kernel sockets, on this client's CPU) against
    the same keep-alive HTTP handler in B over the kernel and over aiotcp."""
    seconds = max(1, round(args.seconds))
    url = f"http://{host if ':' not in host else f'[{host}]'}:{own + HTTP}/"
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", url,
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return wrk_sample(out.decode())


def wrk_sample(text: str) -> Sample:
    """Requests/s and the latency percentiles from ``wrk --latency``'s report; errors
    (non-2xx, socket errors) fail the run rather than flatter it."""
    if "Non-2xx" in text or "Socket errors" in text:
        raise RuntimeError(f"wrk saw errors:\n{text}")
    sample: Sample = {}
    for line in text.splitlines():
        words = line.split()
        if line.startswith("Requests/sec:"):
            sample["wrk_req_per_s"] = float(words[1])
        elif len(words) == 2 and words[0] in ("50%", "99%"):
            sample[f"wrk_p{words[0][:-1]}_ms"] = _milliseconds(words[1])
    if "wrk_req_per_s" not in sample:
        raise RuntimeError(f"no Requests/sec in wrk's report:\n{text}")
    return sample


def _milliseconds(value: str) -> float:
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * scale
    raise ValueError(f"not a wrk duration: {value!r}")


async def case_warmup(open_: Opener, host: str, args: argparse.Namespace, own: int) -> Sample:
    """Bulk both ways, not counted: see run_benchmark."""
    await bulk_send(open_, host, KERNEL_BASE + SINK, WARMUP_BYTES)
    await bulk_receive(open_, host, KERNEL_BASE + SOURCE, args.size_mb << 20)
    return {}


Case = Callable[[Opener, str, argparse.Namespace, int], Awaitable[Sample]]
#: What one round measures, in order.  Each case runs for both stacks back to back,
#: so the two halves of a ratio are seconds apart rather than a whole round.
CASES: tuple[Case, ...] = (
    case_send,
    case_receive,
    case_same_reader,
    case_to_same,
    case_connections,
    case_echo,
    case_idle,
    case_wrk,
)
SERVER_CASES = (case_wrk,)
"""Cases that measure the server in B: the client side needs no aiotcp stack."""


CASE_NAMES = {case.__name__.removeprefix("case_"): case for case in CASES}


def cases_arg(text: str) -> tuple[Case, ...]:
    """``--cases``: a few cases, measured with more rounds than the whole run affords."""
    try:
        return tuple(CASE_NAMES[name] for name in text.split(","))
    except KeyError as exc:
        raise argparse.ArgumentTypeError(
            f"unknown case {exc}; known: {', '.join(CASE_NAMES)}"
        ) from None


def measure(kind: LoopKind, stack: str, host: str, args: argparse.Namespace, case: Case) -> Sample:
    """One case for one client stack on one loop, in a loop (and a Stack) of its own."""
    aiotcp_client = stack == "aiotcp"
    open_: Opener = aiotcp_open if aiotcp_client else kernel_open
    own = AIOTCP_BASE if aiotcp_client else KERNEL_BASE

    async def with_stack() -> Sample:
        if not aiotcp_client or case in SERVER_CASES:
            return await case(open_, host, args, own)
        # A wide port range: connections/s leaves thousands of TIME-WAITs, as it does
        # in the kernel, whose own range is 28,232 ports.
        async with aiotcp.Stack(ephemeral_range=(20000, 65535), **args.option):
            return await case(open_, host, args, own)

    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(asyncio.wait_for(with_stack(), 600))


def pin_apart(wanted: bool) -> tuple[int, int] | None:
    """This client on one CPU, the server on another (returned), or None.

    Two processes that the scheduler may put on the same CPU or move between
    CPUs gave run-to-run swings of 2x on this 2-CPU machine; pinned apart, each
    stack's own cost shows.  The kernel's softirq work still runs wherever its
    packets are raised, for both stacks alike.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if not wanted or len(cpus) < 2:
        return None
    os.sched_setaffinity(0, {cpus[0]})
    return cpus[0], cpus[1]


def start_server(b: Host, size: int, kind: LoopKind) -> subprocess.Popen[str]:
    proc = b.python(
        [str(HERE / "server.py"), str(size), kind, KERNEL_CC or "default"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,  # pending handlers are cancelled at shutdown, noisily
        text=True,
    )
    if read_line(proc.stdout, 30).strip() != "ready":
        raise RuntimeError("bench server did not start")
    return proc


LOWER_IS_BETTER = (
    "send_cpu_us_MiB",
    "receive_cpu_us_MiB",
    "echo_p50_us",
    "echo_p99_us",
    "idle_bytes_per_conn",
    "wrk_p50_ms",
    "wrk_p99_ms",
)


def table(report: dict[str, Any]) -> str:
    """Medians, the median of the rounds' ratios, the lowest and highest of those,
    and the ratio of each stack's best round."""
    head = f"{'metric':<22}{'loop':<12}{'kernel':>10}{'aiotcp':>10}{'ratio':>7}{'best':>6}  rounds"
    lines = [head]
    for kind, by_stack in report["results"].items():
        k, t = by_stack["kernel"], by_stack["aiotcp"]
        for metric in k:
            ratio = report["ratios"][kind].get(metric, float("nan"))
            best = report["best_ratios"][kind].get(metric, float("nan"))
            each = round_ratios(report["samples"][kind], metric)
            spread = f"{min(each):.2f}-{max(each):.2f}" if len(each) > 1 else ""
            lines.append(
                f"{metric:<22}{kind:<12}{k[metric]:>10.1f}{t[metric]:>10.1f}{ratio:>7.2f}"
                f"{best:>6.2f}  {spread}"
            )
    lines.append("ratio = median over rounds of aiotcp / kernel in the same round")
    lines.append("best = aiotcp's best round / the kernel's best round (the machine's fast mode)")
    lines.append("lower is better for " + ", ".join(LOWER_IS_BETTER))
    cc = report["kernel_congestion_control"]
    lines.append(f"kernel congestion control: {cc['used']} (host default {cc['host_default']})")
    return "\n".join(lines)


def round_ratios(rounds: dict[str, list[dict[str, float]]], metric: str) -> list[float]:
    """aiotcp / kernel within each round: the two ran back to back, in the same phase
    of the machine, so a slow phase moves both sides of a ratio alike."""
    return [
        ta[metric] / ka[metric]
        for ka, ta in zip(rounds["kernel"], rounds["aiotcp"], strict=True)
        if ka[metric]
    ]


def best_ratio(rounds: dict[str, list[dict[str, float]]], metric: str) -> float:
    """aiotcp's best round over the kernel's best round.  This VM's CPUs have a slow
    mode (minutes long, 1.5x the CPU per MiB) that the kernel's own receiver falls
    into as well (docs/performance.md): a round's two halves may land in different
    modes, while each stack's best round shows what it does in the fast one."""
    pick = min if metric in LOWER_IS_BETTER else max
    kernel = pick(r[metric] for r in rounds["kernel"])
    return pick(r[metric] for r in rounds["aiotcp"]) / kernel if kernel else float("nan")


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """``--repeat`` rounds; in each, every case over kernel and aiotcp back to back,
    in alternating order.

    This machine's neighbours take a varying share of its CPUs (steal time of
    25 % and more), which moved the kernel's own numbers by up to 4x between runs,
    and its CPUs have a slow mode lasting minutes.  Pairing the two stacks per case
    (seconds apart; a whole round apart moved IPv6's uvloop receive ratio by 20 %
    between runs) and reporting medians keeps one slow phase from deciding a ratio.

    Both processes (this client and the server) fix glibc's malloc thresholds
    first (bench/allocator.py): otherwise whichever stack ran first took a round
    in which asyncio's stream copies page-faulted fresh memory (the kernel's
    receive case: ~700 MB/s there, ~2,000 MB/s in later rounds).  A short bulk
    transfer over each stack also comes first and is not counted.
    """
    size = args.size_mb * 1024 * 1024
    families = FAMILIES[args.family]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        label(kind, family): {"kernel": [], "aiotcp": []}
        for kind in LOOP_KINDS
        for family in families
    }
    t0 = time.monotonic()
    with two_hosts("bench", ipv6="ipv6" in families) as (a, b):
        # connections/s leaves thousands of TIME-WAITs on the client, as it should; a
        # kernel that may not reuse them scans a full port range on every connect
        # of the next round (measured: 2,600/s in the first round, 200/s after).
        # aiotcp's stack is new each round, so this keeps the kernel's rounds alike.
        sysctl(a, "net.ipv4.tcp_tw_reuse", "1")
        kernel_cc = a.call(kernel_congestion_control)
        pinned = pin_apart(args.pin)
        if args.steer:
            if not pinned:
                raise SystemExit("--steer needs the client and server pinned apart (no --no-pin)")
            steer_receive(a, pinned[0])
            steer_receive(b, pinned[1])
        for kind in LOOP_KINDS:
            server = start_server(b, size, kind)
            if pinned:
                os.sched_setaffinity(server.pid, {pinned[1]})
            try:
                with a.entered():
                    for family in families:
                        for s in ("kernel", "aiotcp"):  # discarded: see run_benchmark
                            measure(kind, s, b.address_of(family), args, case_warmup)
                    for i in range(args.repeat):
                        # Each case runs both families and both stacks back to back, so a
                        # ratio's two halves share the machine's phase; which stack and
                        # which family goes first alternates, so that neither always
                        # follows the other's TIME-WAITs and buffers.
                        order = ("kernel", "aiotcp") if i % 2 == 0 else ("aiotcp", "kernel")
                        rows: dict[tuple[str, str], Sample] = {
                            (f, s): {} for f in families for s in order
                        }
                        for case in args.cases:
                            for family in families if i // 2 % 2 == 0 else families[::-1]:
                                for s in order:
                                    address = b.address_of(family)
                                    rows[family, s].update(measure(kind, s, address, args, case))
                        for (family, s), row in rows.items():
                            samples[label(kind, family)][s].append(row)
            finally:
                b.stop(server)
    results = {
        kind: {s: medians(runs) for s, runs in by_stack.items()}
        for kind, by_stack in samples.items()
    }
    return {
        "args": {**vars(args), "cases": [case.__name__ for case in args.cases]},
        "kernel_congestion_control": kernel_cc,
        "seconds": time.monotonic() - t0,
        "results": results,
        "samples": samples,
        # The median of the rounds' own ratios, not the ratio of the two medians: the
        # kernel's numbers moved by 2x between runs of the same code (4,065 and
        # 1,808 MB/s sending), and a round's two halves share their machine's phase.
        "ratios": {
            kind: {
                m: statistics.median(each)
                for m in by_stack["kernel"][0]
                if (each := round_ratios(by_stack, m))
            }
            for kind, by_stack in samples.items()
        },
        "best_ratios": {
            kind: {m: best_ratio(by_stack, m) for m in by_stack["kernel"][0]}
            for kind, by_stack in samples.items()
        },
    }


FAMILIES = {"ipv4": ("ipv4",), "ipv6": ("ipv6",), "both": ("ipv4", "ipv6")}


def label(kind: LoopKind, family: str) -> str:
    """A result row's loop column: the loop, and the family when it is IPv6."""
    return kind if family == "ipv4" else f"{kind}/v6"


def kernel_congestion_control() -> dict[str, str]:
    """What the kernel's sockets use in this namespace: the host's default, and the
    algorithm the benchmark's kernel sockets really get (``--kernel-cc``)."""
    with socket.socket() as probe:
        default = congestion_control_of(probe)
        use_congestion_control(probe, KERNEL_CC)
        return {"host_default": default, "used": congestion_control_of(probe)}


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {m: statistics.median(run[m] for run in runs) for m in runs[0]}


STEADY = allocator.steady()


def main() -> None:
    global KERNEL_CC
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds (medians)")
    parser.add_argument("--quick", action="store_true", help="tiny run (CI regression guard)")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let client and server share CPUs"
    )
    parser.add_argument(
        "--kernel-cc",
        default=KERNEL_CC,
        help=f"the kernel sockets' congestion control (default {KERNEL_CC}, as aiotcp's;"
        " 'default': the host's)",
    )
    parser.add_argument(
        "--steer",
        action="store_true",
        help="each host's receive processing on its own process's CPU (RPS): two machines",
    )
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        default="ipv4",
        help="address family of every connection; 'both': IPv4 and IPv6 in each round",
    )
    parser.add_argument(
        "--cases",
        type=cases_arg,
        default=CASES,
        help="comma-separated subset of: " + ", ".join(CASE_NAMES),
    )
    add_option_argument(parser, "aiotcp's client connections")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    args.option = dict(args.option)
    KERNEL_CC = congestion_control_arg(args.kernel_cc)
    if args.quick:
        args.size_mb, args.seconds, args.rounds, args.idle, args.repeat = 8, 0.5, 200, 100, 1
    report = run_benchmark(args)
    report["steady_allocator"] = STEADY
    print(table(report))
    print(f"(whole run {report['seconds']:.0f} s)")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
