"""Real applications on aiotcp against the kernel: aiohttp's req/s and TLS bulk MB/s.

Builds two namespaces (A 198.18.0.1, B .2) and runs unchanged asyncio programs in
A, each twice in the same round: plainly (``python app.py``: the kernel's TCP) and
under ``python -m aiotcp run`` (aiotcp's), on asyncio's loop and on uvloop
(``--loop uvloop`` for aiotcp; the program installs uvloop itself for the kernel).
The load always comes from B over the kernel:

- ``http``: aiohttp's hello world (bench/apps/hello.py, ``web.run_app``) under
  ``wrk -t1 -c<connections> -d<seconds>s --latency``: req/s, latency p50/p99, and
  the server's CPU per request (user + system, from /proc);
- ``tls``: a TLS stream server in A writes ``--mbytes`` in 64 KiB chunks to a
  blocking client in B (``send``: aiotcp's TLS server against the kernel's), and
  an asyncio TLS client in A reads as much from a blocking server in B
  (``receive``: aiotcp's TLS client against the kernel's) — bench/apps/tls_bulk.py.
  MB/s and the tested process's CPU per MiB.

    sudo .venv/bin/python bench/aiohttp_bench.py [--rounds 3] [--seconds 5]
        [--connections 50] [--mbytes 64] [--only http|tls] [--json F] [--no-pin]
        [--profile DIR]

Why it is built as it is (bench.py's reasons, docs/performance.md): each number is
the median of ``--rounds`` rounds in which the kernel and aiotcp alternate; the
ratio is the median of each round's own aiotcp/kernel ratio.  The process under
test runs on one CPU and its load on the other.  Every process gets glibc's malloc
thresholds fixed through ``GLIBC_TUNABLES`` (bench/allocator.py's values), so the
programs themselves stay unchanged.  The kernel uses cubic, as aiotcp does, through
a ``congctl`` on each namespace's route (this host's default, BBR, paces veth
senders to about half of cubic's rate).  Each process under test is new for each
measurement and gets a short untimed warm-up first (``--warmup`` s of wrk, or a
transfer of an eighth of ``--mbytes``).

Bounded: a fixed number of rounds; wrk stops after ``--seconds``, a transfer
after ``--mbytes``, and every subprocess has a timeout; processes and namespaces
go in ``finally``.  Traffic only between the two namespaces (198.18.0.0/15).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import pathlib
import platform
import re
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import aiotcp
from aiotcp.testing.netns import Host, read_line, two_hosts

HERE = pathlib.Path(__file__).resolve().parent
APPS = HERE / "apps"
HELLO, TLS_BULK = APPS / "hello.py", APPS / "tls_bulk.py"
HELLO_BODY = "Hello, World!"  # bench/apps/hello.py's BODY

Stack = Literal["kernel", "aiotcp"]
STACKS: tuple[Stack, ...] = ("kernel", "aiotcp")
LOOPS = ("asyncio", "uvloop")
BENCHES = ("http", "tls")
HTTP_PORT: dict[Stack, int] = {"kernel": 8080, "aiotcp": 8081}
TLS_PORT: dict[Stack, int] = {"kernel": 8443, "aiotcp": 8444}
PEER_TLS_PORT = 9443

#: glibc's malloc thresholds as bench/allocator.py fixes them, for programs that
#: must stay unchanged: the tunables are read from the environment at start-up.
GLIBC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864"
PROFILE_ENV = "AIOTCP_BENCH_PROFILE"  # bench/apps/appkit.py's

#: metric -> its label in the table, per benchmark
METRICS = {
    "http": {
        "req_per_s": "req/s",
        "p50_ms": "latency p50 ms",
        "p99_ms": "latency p99 ms",
        "server_cpu_us_per_req": "server CPU µs/request",
    },
    "tls": {
        "send_MBps": "TLS send MB/s (server in A)",
        "send_cpu_us_MiB": "  server CPU µs/MiB",
        "receive_MBps": "TLS receive MB/s (client in A)",
        "receive_cpu_us_MiB": "  client CPU µs/MiB",
    },
}
#: the issue's goal: these ratios at or above GOAL
GOAL = 0.8
GOAL_METRICS = {"http": ("req_per_s",), "tls": ("send_MBps", "receive_MBps")}


# ------------------------------------------------------------------- wrk's output


@dataclass(frozen=True)
class WrkResult:
    """What the report needs from one wrk run; ``requests`` turns the server's CPU
    time into CPU per request."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    """Socket errors of every kind plus non-2xx/3xx responses."""


_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def duration_ms(text: str) -> float:
    """wrk's ``812.00us``, ``8.02ms``, ``1.20s`` or ``2.00m``, in milliseconds."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNIT_MS[match[2]]


def parse_wrk(output: str) -> WrkResult:
    """The numbers of one ``wrk --latency`` run; ValueError if any is missing.

    Why not trust the exit status alone: wrk exits 0 when every request failed, and
    prints its latency table only with ``--latency``.
    """

    def field(pattern: str) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise ValueError(f"wrk output without /{pattern}/:\n{output}")
        return match[1]

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = sum(map(int, socket_errors.groups())) if socket_errors else 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests_per_s=float(field(r"^Requests/sec:\s+([0-9.]+)")),
        p50_ms=duration_ms(field(r"^\s+50%\s+(\S+)")),
        p99_ms=duration_ms(field(r"^\s+99%\s+(\S+)")),
        requests=int(field(r"^\s+(\d+) requests in ")),
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
    )


# ------------------------------------------------------------------------ results


def round_ratios(rounds: dict[str, list[dict[str, float]]], metric: str) -> list[float]:
    """aiotcp / kernel within each round: the two ran back to back, in the same
    phase of this shared machine, so a slow phase moves both sides alike."""
    return [
        t[metric] / k[metric]
        for k, t in zip(rounds["kernel"], rounds["aiotcp"], strict=True)
        if k.get(metric)
    ]


def summarize(samples: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, Any]:
    """Medians per loop and stack, and the median of the rounds' ratios per loop."""
    medians = {
        loop: {
            stack: {m: statistics.median(run[m] for run in runs) for m in runs[0]}
            for stack, runs in by_stack.items()
            if runs
        }
        for loop, by_stack in samples.items()
    }
    ratios: dict[str, dict[str, float]] = {}
    spreads: dict[str, dict[str, list[float]]] = {}
    for loop, by_stack in samples.items():
        if not by_stack["kernel"]:
            continue
        ratios[loop], spreads[loop] = {}, {}
        for metric in by_stack["kernel"][0]:
            if each := round_ratios(by_stack, metric):
                ratios[loop][metric] = statistics.median(each)
                spreads[loop][metric] = [min(each), max(each)]
    return {"results": medians, "ratios": ratios, "spread": spreads, "samples": samples}


def table(bench: str, summary: dict[str, Any]) -> str:
    """One line per metric and loop: medians, ratio, and the rounds' lowest-highest."""
    lines = [f"{bench:<32}{'loop':<9}{'kernel':>10}{'aiotcp':>10}{'ratio':>7}  rounds"]
    for loop, by_stack in summary["results"].items():
        for metric, label in METRICS[bench].items():
            if metric not in by_stack["kernel"]:
                continue
            k, t = by_stack["kernel"][metric], by_stack["aiotcp"][metric]
            ratio = summary["ratios"][loop].get(metric, float("nan"))
            low, high = summary["spread"][loop].get(metric, [ratio, ratio])
            lines.append(
                f"{label:<32}{loop:<9}{k:>10.1f}{t:>10.1f}{ratio:>7.2f}  {low:.2f}-{high:.2f}"
            )
    return "\n".join(lines)


def goal_lines(bench: str, summary: dict[str, Any]) -> list[str]:
    """``ratio >= GOAL`` for the issue's metrics, as met or below."""
    out = []
    for loop, ratios in summary["ratios"].items():
        for metric in GOAL_METRICS[bench]:
            if metric in ratios:
                verdict = "met" if ratios[metric] >= GOAL else "BELOW"
                out.append(f"goal {metric} {loop}: {ratios[metric]:.2f} >= {GOAL} {verdict}")
    return out


def error_lines(bench: str, summary: dict[str, Any]) -> list[str]:
    """wrk's failed requests, which a ratio would hide: any at all is worth a look."""
    out = []
    for loop, by_stack in summary["samples"].items():
        for stack, runs in by_stack.items():
            if errors := sum(run.get("errors", 0) for run in runs):
                out.append(f"{bench} {loop} {stack}: {errors:.0f} wrk errors")
    return out


# --------------------------------------------------------------------- processes


@dataclass(frozen=True)
class Setup:
    """What every measurement needs: the hosts, CPUs, certificates and options."""

    a: Host
    b: Host
    test_cpu: int | None
    load_cpu: int | None
    certdir: pathlib.Path
    logdir: pathlib.Path
    args: argparse.Namespace
    builds: set[str] = field(default_factory=set)
    """aiotcp's build in each program under test: ``compiled``, or ``sources``."""


def app_command(app: pathlib.Path, app_args: Sequence[str], stack: Stack, loop: str) -> list[str]:
    """The program as a user would start it, on the kernel or under ``aiotcp run``."""
    if stack == "aiotcp":
        return [sys.executable, "-m", "aiotcp", "run", "--loop", loop, str(app), *app_args]
    return [sys.executable, str(app), *app_args, *(["uvloop"] if loop == "uvloop" else [])]


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """``taskset`` rather than affinity set after the start: wrk and the programs start
    their threads at once, and every thread inherits the mask from the first."""
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


def environment(profile: pathlib.Path | None = None) -> dict[str, str]:
    env = {**os.environ, "GLIBC_TUNABLES": GLIBC_TUNABLES}
    env.pop(PROFILE_ENV, None)
    if profile is not None:
        env[PROFILE_ENV] = str(profile)
    return env


def profile_path(setup: Setup, name: str) -> pathlib.Path | None:
    return None if setup.args.profile is None else pathlib.Path(setup.args.profile) / name


def check_ready(line: str, stack: Stack, loop: str) -> str | None:
    """``ready <loop class> <stack> [build]`` must say what the bench is about to label
    it; returns aiotcp's build (``compiled``/``sources``), None for the kernel."""
    words = line.split()
    if len(words) < 3 or words[0] != "ready":
        raise RuntimeError(f"expected a ready line, got {line!r}")
    on_uvloop = words[1].startswith("uvloop")
    if words[2] != stack or on_uvloop != (loop == "uvloop"):
        raise RuntimeError(f"measuring {stack} on {loop}, but the program says {line!r}")
    return words[3] if stack == "aiotcp" and len(words) > 3 else None


def note_build(setup: Setup, build: str | None) -> None:
    if build is not None:
        setup.builds.add(build)


def log_tail(path: pathlib.Path, chars: int = 2000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-chars:]
    return ""


@contextlib.contextmanager
def app_process(
    setup: Setup, cmd: list[str], stack: Stack, loop: str, name: str
) -> Iterator[subprocess.Popen[str]]:
    """A program under test in A, pinned, ready (its first line checked), stopped after."""
    log = setup.logdir / f"{name}.stderr"
    with log.open("w") as stderr:
        proc = setup.a.popen(
            pinned(cmd, setup.test_cpu),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=environment(profile_path(setup, f"{name}.prof")),
        )
    try:
        try:
            note_build(setup, check_ready(read_line(proc.stdout, 60), stack, loop))
        except (TimeoutError, EOFError) as exc:
            raise RuntimeError(f"{name} did not start: {exc}\n{log_tail(log)}") from exc
        yield proc
    finally:
        setup.a.stop(proc, timeout=30)  # long enough to write a profile


def process_cpu_seconds(pid: int) -> float:
    """User + system time of a whole process (all its threads), from /proc.

    ``pid`` is the program's own: ``ip netns exec`` and ``taskset`` exec it in place.
    """
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_in(host: Host, cmd: list[str], timeout: float, env: dict[str, str]) -> str:
    """A command to completion in ``host``; its stderr in the error if it fails."""
    proc = host.run(cmd, check=False, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return str(proc.stdout)


# -------------------------------------------------------------------------- http


def wrk(setup: Setup, url: str, seconds: int) -> WrkResult:
    args = setup.args
    cmd = ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "--latency", url]
    return parse_wrk(run_in(setup.b, pinned(cmd, setup.load_cpu), seconds + 60, environment()))


def measure_http(setup: Setup, loop: str, stack: Stack, name: str) -> dict[str, float]:
    port = HTTP_PORT[stack]
    cmd = app_command(HELLO, [str(port)], stack, loop)
    with app_process(setup, cmd, stack, loop, name) as proc:
        url = f"http://{setup.a.address}:{port}/"
        body = run_in(setup.b, ["curl", "-sS", "--max-time", "10", url], 30, environment())
        if body != HELLO_BODY:
            raise RuntimeError(f"{url} answered {body!r}")
        if setup.args.warmup:
            wrk(setup, url, setup.args.warmup)
        cpu0 = process_cpu_seconds(proc.pid)
        result = wrk(setup, url, setup.args.seconds)
        cpu = process_cpu_seconds(proc.pid) - cpu0
    return {
        "req_per_s": result.requests_per_s,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "server_cpu_us_per_req": cpu * 1e6 / max(result.requests, 1),
        "errors": float(result.errors),
    }


# --------------------------------------------------------------------------- tls


@dataclass(frozen=True)
class Transfer:
    """One line of bench/apps/tls_bulk.py: ``<label> BYTES CPU_SECONDS WALL_SECONDS``."""

    label: str
    nbytes: int
    cpu_s: float
    wall_s: float

    @property
    def mbps(self) -> float:
        return self.nbytes / self.wall_s / 1e6

    @property
    def cpu_us_per_mib(self) -> float:
        return self.cpu_s * 1e6 / (self.nbytes / (1 << 20))


def parse_transfer(line: str) -> Transfer:
    label, nbytes, cpu, wall = line.split()
    return Transfer(label, int(nbytes), float(cpu), float(wall))


def transfers(output: str, label: str) -> list[Transfer]:
    return [parse_transfer(line) for line in output.splitlines() if line.startswith(label + " ")]


def tls_sizes(args: argparse.Namespace) -> tuple[str, str]:
    size = args.mbytes * 1_000_000
    return str(size), str(max(size // 8, 1))


def tls_timeout(args: argparse.Namespace) -> float:
    """Start-up, and both transfers (9/8 of ``--mbytes``) at 2 MB/s: slower is a hang."""
    return 60.0 + int(args.mbytes) * 9 / 8 / 2


def measure_tls_send(setup: Setup, loop: str, stack: Stack, name: str) -> dict[str, float]:
    """The program in A serves, the blocking kernel client in B reads (and times)."""
    port, certdir = TLS_PORT[stack], str(setup.certdir)
    size, warmup = tls_sizes(setup.args)
    cmd = app_command(TLS_BULK, ["serve", str(port), certdir], stack, loop)
    with app_process(setup, cmd, stack, loop, name) as proc:
        fetch = [sys.executable, str(TLS_BULK), "peer-fetch", setup.a.address, str(port)]
        fetch += [certdir, size, warmup]
        out = run_in(setup.b, pinned(fetch, setup.load_cpu), tls_timeout(setup.args), environment())
        (received,) = transfers(out, "received")
        served = [read_line(proc.stdout, 30) for _ in range(2)]  # the warm-up's, the timed one's
    sent = parse_transfer(served[1])
    if sent.label != "sent" or sent.nbytes != received.nbytes:
        raise RuntimeError(f"server said {served}, client {received}")
    return {"send_MBps": received.mbps, "send_cpu_us_MiB": sent.cpu_us_per_mib}


def measure_tls_receive(setup: Setup, loop: str, stack: Stack, name: str) -> dict[str, float]:
    """The program in A fetches from the blocking kernel server in B (and times itself)."""
    size, warmup = tls_sizes(setup.args)
    fetch = ["fetch", setup.b.address, str(PEER_TLS_PORT), str(setup.certdir), size, warmup]
    cmd = pinned(app_command(TLS_BULK, fetch, stack, loop), setup.test_cpu)
    env = environment(profile_path(setup, f"{name}.prof"))
    out = run_in(setup.a, cmd, tls_timeout(setup.args), env)
    note_build(setup, check_ready(out.splitlines()[0], stack, loop))
    (received,) = transfers(out, "received")
    return {"receive_MBps": received.mbps, "receive_cpu_us_MiB": received.cpu_us_per_mib}


@contextlib.contextmanager
def peer_server(setup: Setup) -> Iterator[None]:
    """The kernel TLS server in B that the ``receive`` case reads from."""
    cmd = [sys.executable, str(TLS_BULK), "peer-serve", str(PEER_TLS_PORT), str(setup.certdir)]
    proc = setup.b.popen(
        pinned(cmd, setup.load_cpu),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment(),
    )
    try:
        if read_line(proc.stdout, 30).strip() != "ready peer":
            raise RuntimeError("the TLS peer server did not start")
        yield
    finally:
        setup.b.stop(proc)


def write_certificates(certdir: pathlib.Path, addresses: Sequence[str]) -> None:
    """A throwaway CA and a server certificate for both hosts' addresses (trustme)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(*addresses)
    cert.private_key_and_cert_chain_pem.write_to_path(str(certdir / "server.pem"))
    ca.cert_pem.write_to_path(str(certdir / "ca.pem"))


# -------------------------------------------------------------------------- runs


def route_congestion_control(host: Host, name: str) -> None:
    """The kernel's sockets on ``name`` through the subnet's route (``congctl``).

    The namespace's own default cannot be changed here (EPERM from this container),
    and the programs should not have to set ``TCP_CONGESTION`` themselves: a route's
    algorithm applies to every kernel connection that uses it, aiotcp ignores it.
    """
    cidr = f"{host.address.rsplit('.', 1)[0]}.0/{host.prefixlen}"
    host.run(["ip", "route", "replace", cidr, "dev", host.ifname, "proto", "kernel"])
    host.run(["ip", "route", "change", cidr, "dev", host.ifname, "proto", "kernel", "scope",
              "link", "src", host.address, "congctl", name])  # fmt: skip


def cpus(wanted: bool) -> tuple[int | None, int | None]:
    """(CPU of the program under test, CPU of its load), or Nones without pinning.

    Two processes that the scheduler may put on the same CPU swung single rounds
    by 2x on this 2-CPU machine (bench.py's pin_apart).
    """
    available = sorted(os.sched_getaffinity(0))
    if not wanted or len(available) < 2:
        return None, None
    return available[1], available[0]


MEASURES = {
    "http": (measure_http,),
    "tls": (measure_tls_send, measure_tls_receive),
}


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """``--rounds`` rounds per loop and benchmark, kernel and aiotcp alternating."""
    benches = BENCHES if args.only is None else (args.only,)
    samples: dict[str, dict[str, dict[str, list[dict[str, float]]]]] = {
        bench: {loop: {stack: [] for stack in STACKS} for loop in LOOPS} for bench in benches
    }
    t0, load_before = time.monotonic(), os.getloadavg()
    started = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    test_cpu, load_cpu = cpus(args.pin)
    with tempfile.TemporaryDirectory(prefix="aiohttp-bench-") as tmp, two_hosts("appb") as (a, b):
        certdir = pathlib.Path(tmp)
        write_certificates(certdir, [a.address, b.address])
        if args.kernel_cc != "default":
            for host in (a, b):
                route_congestion_control(host, args.kernel_cc)
        setup = Setup(a, b, test_cpu, load_cpu, certdir, certdir, args)
        with peer_server(setup) if "tls" in benches else contextlib.nullcontext():
            for bench in benches:
                for loop in LOOPS:
                    for i in range(args.rounds):
                        order = STACKS if i % 2 == 0 else STACKS[::-1]
                        for stack in order:
                            sample: dict[str, float] = {}
                            for measure in MEASURES[bench]:
                                name = f"{bench}-{measure.__name__}-{loop}-{stack}-r{i}"
                                sample |= measure(setup, loop, stack, name)
                            samples[bench][loop][stack].append(sample)
                            print(f"  {bench} {loop} {stack} round {i + 1}: {fmt(sample)}")
                            sys.stdout.flush()
    return {
        "date": started,
        "machine": machine(),
        "aiotcp_builds": sorted(setup.builds),
        "args": vars(args),
        "seconds": time.monotonic() - t0,
        # Other work on the machine takes CPU from both stacks' rounds alike, but
        # a busy machine (load > CPUs) limits wrk as much as the server.
        "loadavg_1min": [load_before[0], os.getloadavg()[0]],
        **{bench: summarize(by_loop) for bench, by_loop in samples.items()},
    }


def fmt(sample: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in sample.items())


def machine() -> dict[str, Any]:
    def version(dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "aiohttp": version("aiohttp"),
        "uvloop": version("uvloop"),
    }


def report_text(report: dict[str, Any]) -> str:
    lines = []
    for bench in BENCHES:
        if bench in report:
            lines += [table(bench, report[bench]), *goal_lines(bench, report[bench])]
            lines += error_lines(bench, report[bench])
            lines.append("")
    lines.append("ratio = median over rounds of aiotcp / kernel in the same round")
    lines.append("lower is better for latency and CPU rows")
    builds = report["aiotcp_builds"]
    lines.append(f"aiotcp ran from: {', '.join(builds)}")
    if builds != ["compiled"]:
        lines.append("WARNING: some aiotcp runs used its sources, not the compiled build")
    m = report["machine"]
    lines.append(
        f"{report['date']}, {m['cpus']} CPUs, Linux {m['kernel']}, Python {m['python']},"
        f" aiohttp {m['aiohttp']}, uvloop {m['uvloop']}, {m['openssl']}"
    )
    before, after = report["loadavg_1min"]
    lines.append(f"machine load (1 min) {before:.1f} before, {after:.1f} after")
    lines.append(f"(whole run {report['seconds']:.0f} s)")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=positive, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--seconds", type=positive, default=5, help="wrk's duration per run")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of untimed wrk first")
    parser.add_argument("--connections", type=positive, default=50, help="wrk's -c")
    parser.add_argument("--mbytes", type=positive, default=64, help="MB per TLS transfer")
    parser.add_argument("--only", choices=BENCHES, help="one benchmark only")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument(
        "--no-pin", dest="pin", action="store_false", help="let the processes share CPUs"
    )
    parser.add_argument(
        "--kernel-cc",
        default=aiotcp.TcpOptions().congestion,
        help="the kernel's congestion control, by route (default: aiotcp's; 'default': the host's)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="write a cProfile of every program under test to DIR (the numbers then"
        " include the profiler's cost)",
    )
    return parser


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def stop_on_sigterm() -> None:
    """SIGTERM ends the run through its ``finally`` blocks, as Ctrl-C does: the
    default action would leave both namespaces and the certificates behind."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    stop_on_sigterm()
    if args.profile:
        pathlib.Path(args.profile).mkdir(parents=True, exist_ok=True)
    report = run_benchmark(args)
    print(report_text(report))
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
