"""Congestion control under loss: aiotcp and the Linux kernel senders on one impaired link.

    .venv/bin/python bench/congestion.py [--size 50M] [--loss 0,0.1,1,3] [--delay-ms 20]
                                         [--direction send|receive|both]
                                         [--out bench/results/congestion] [--quick]

``--direction receive`` (or ``both``) measures aiotcp as the *receiver*: a kernel
sender (``reno``, ``cubic``) on host B pushes ``--size`` bytes to aiotcp and to the
kernel on host A, the link impaired on A's input, so the ratio is what the receiver
alone makes of the same sender and link.

For each loss rate, four senders each push ``--size`` bytes to a kernel sink (a plain
socket reader on host B, ``aiotcp.testing.netns.kernel_sink``): aiotcp with
``congestion="newreno"`` and ``"cubic"``, and the kernel with ``TCP_CONGESTION`` ``reno``
and ``cubic``. Same link, same receiver, same impairment, so the goodput ratio
aiotcp/kernel per algorithm measures the sender alone.

The link (this kernel has no netem): ``aiotcp.testing.impair`` on host B's veth, inbound
only (``direction="in"``, the data direction A→B): every data segment waits
``--delay-ms`` and is dropped with probability ``loss``; ACKs B→A are neither delayed
nor dropped, so the RTT is the delay plus the helper's own latency (about 1 ms). Each
transfer gets fresh namespaces, a fresh sink and a fresh impairment helper seeded from
the loss rate alone, so every sender in a cell meets the same sequence of drop
decisions (packet *n* is dropped for all or for none; which bytes packet *n* carries
depends on the sender).

Links with nothing but delay (the 0 % cells, and the calibration's passthrough) use
``aiotcp.testing.fastimpair`` instead: a C helper that delays GSO aggregates whole
and costs the sender almost nothing, where the Python helper's CPU bounded it
(docs/congestion.md, "A cheaper impairer"); the calibration measures both.

Goodput = verified bytes / seconds from the first byte written (after the handshake)
until the sender sees the sink's FIN, which the sink sends only after reading every
byte; the sink's byte count and SHA-256 must match what was sent. Each transfer is
bounded by ``--timeout``: a cut one is reported as ``timeout`` with the bytes
acknowledged by then. Transfers in cells with loss >= ``--parallel-from`` (1 % by
default) run their four senders at the same time, each in its own process and
namespaces: there each flow moves under 1 MB/s, loss (not CPU) bounds it (a trial of
the 1 % cell one at a time gave the same goodputs within 3 %), and the default run
takes about 6 minutes instead of 15; cells below run one transfer at a time. Before the
cells, a calibration measures what the impairer itself costs (kernel cubic without it
and through it with no delay and no loss; aiotcp cubic without it).

Writes ``<out>.md`` (tables), ``<out>.json`` (every number, and cwnd traces),
``<out>.png`` (goodput vs loss) and ``<out>-cwnd.png`` (cwnd over time in the
``--cwnd-loss`` cell, sampled every 10 ms) and prints the Markdown at the end. The
plots need matplotlib (``pip install aiotcp[plot]``); without it the tables and JSON
are still written. Needs root (namespaces, raw sockets, iptables, NFQUEUE).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hashlib
import itertools
import json
import math
import os
import platform
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from cwnd_trace import KernelSampler, Trace, kernel_sample, sample_aiotcp, tcp_info
from options_arg import add_option_argument

from aiotcp import _compiled
from aiotcp.testing.fastimpair import fast_impair
from aiotcp.testing.impair import Impairment, impair
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import (
    Host,
    cleanup_stale,
    kernel_sink,
    kernel_source,
    pattern,
    routed_hosts,
    two_hosts,
)
from aiotcp.testing.transfer import kernel_tcp_stats, receive_bulk, send_bulk, stats_delta

PREFIX = "ccbench"
"""Namespace name prefix (``two_hosts``); ``cleanup_stale`` removes dead runs' leftovers."""
SINK_PORT = 5001
SAMPLE_INTERVAL = 0.01

StackKind = Literal["aiotcp", "kernel"]


@dataclass(frozen=True)
class Sender:
    """One column of the table: a TCP implementation and its congestion control, and
    (``--direction receive``) the receiver a kernel sender sends to."""

    stack: StackKind
    algorithm: str
    receiver: StackKind | None = None
    """None: the sender is measured, against a kernel sink.  Else a kernel sender
    (``stack`` is "kernel") sends to this receiver, which is measured."""

    @property
    def name(self) -> str:
        if self.receiver is None:
            return f"{self.stack} {self.algorithm}"
        return f"{self.stack} {self.algorithm} to {self.receiver}"


SENDERS = (
    Sender("aiotcp", "newreno"),
    Sender("aiotcp", "cubic"),
    Sender("aiotcp", "bbr"),
    Sender("kernel", "reno"),
    Sender("kernel", "cubic"),
    Sender("kernel", "bbr"),
)
RECEIVERS = (
    Sender("kernel", "reno", "aiotcp"),
    Sender("kernel", "cubic", "aiotcp"),
    Sender("kernel", "bbr", "aiotcp"),
    Sender("kernel", "reno", "kernel"),
    Sender("kernel", "cubic", "kernel"),
    Sender("kernel", "bbr", "kernel"),
)
PAIRS = (
    ("aiotcp newreno", "kernel reno", "newreno/reno"),
    ("aiotcp cubic", "kernel cubic", "cubic/cubic"),
    ("aiotcp bbr", "kernel bbr", "bbr/bbr"),
    ("aiotcp cubic", "kernel bbr", "default/default"),
)
"""Ratio columns: aiotcp / kernel with the same algorithm (NewReno is Linux's "reno"),
and each stack's default against the other's (aiotcp: CUBIC, Linux's own default;
this host's kernel: BBR, set by its sysctl)."""
RECEIVE_PAIRS = (
    ("kernel reno to aiotcp", "kernel reno to kernel", "reno: aiotcp/kernel"),
    ("kernel cubic to aiotcp", "kernel cubic to kernel", "cubic: aiotcp/kernel"),
    ("kernel bbr to aiotcp", "kernel bbr to kernel", "bbr: aiotcp/kernel"),
)
"""Ratio columns of the receive direction: the same kernel sender, to each receiver."""
COLUMNS = {"send": (SENDERS, PAIRS), "receive": (RECEIVERS, RECEIVE_PAIRS)}


@dataclass(frozen=True)
class Link:
    """The A→B impairment of a transfer (``impaired=False``: bare veth)."""

    loss: float
    """Drop probability per data packet (0.01 = 1 %)."""
    delay: float
    """Seconds each data packet is held (one way, A→B)."""
    seed: int
    impaired: bool = True
    dup: float = 0.0
    """Probability that a data packet arrives twice."""
    reorder: float = 0.0
    """Fraction of data packets held 2 ms longer, so the next ones overtake them."""
    rate_mbit: float | None = None
    """A ``tbf`` bottleneck (None: none), on a router between the hosts: on the
    sender's own interface, Linux's TCP Small Queues would keep the kernel's queue
    in its socket, while aiotcp's frames would fill the qdisc — a test of the host,
    not of congestion control."""
    queue_ms: float = 100.0
    """The bottleneck's queue, as ``tbf`` counts it: the longest a packet may wait."""
    helper: str = "auto"
    """``"c"``: ``fast_impair`` (constant delay and loss; GSO aggregates kept whole
    when there is no loss); ``"python"``: ``impair``; ``"auto"``: C when there is
    nothing but delay."""

    @property
    def fast(self) -> bool:
        """Whether the C helper impairs this link (docs/congestion.md, "A cheaper
        impairer")."""
        if self.helper == "auto" or self.dup or self.reorder:
            return not (self.loss or self.dup or self.reorder)
        return self.helper == "c"

    def describe(self) -> str:
        if not self.impaired:
            return "no impairer"
        text = f"loss {self.loss:.2%}, delay {self.delay * 1000:g} ms, seed {self.seed}"
        if self.dup or self.reorder:
            text += f", dup {self.dup:.0%}, reorder {self.reorder:.0%}"
        if not self.fast:
            text += ", Python helper"
        else:
            text += ", C helper (GSO aggregates)" if not self.loss else ", C helper"
        if self.rate_mbit is not None:
            text += f", {self.rate_mbit:g} Mbit/s, queue {self.queue_ms:g} ms"
        return text


def bottleneck(seed: int) -> Link:
    """A 32 Mbit/s bottleneck with a deep queue (1 s, as ``tbf`` counts it), 20 ms, no
    loss: what each algorithm makes the queue hold (latency under load)."""
    return Link(0.0, 0.02, seed, rate_mbit=32.0, queue_ms=1000.0)


def profile_a(seed: int) -> Link:
    """Issue 25's "profile A": 10 ms each way (here 20 ms on the data direction, the
    same round trip), 5 % loss, 2 % duplicates, 10 % reordering, 32 Mbit/s."""
    return Link(0.05, 0.02, seed, dup=0.02, reorder=0.10, rate_mbit=32.0)


@dataclass
class RunResult:
    """One transfer. ``status``: ok | timeout | error | unavailable."""

    sender: str
    link: str
    loss_percent: float
    status: str
    size: int
    bytes_done: int
    """Verified by the sink when ``ok``; acknowledged bytes at the cut otherwise."""
    seconds: float
    verified: bool = False
    retransmits: int | None = None
    rto_expirations: int | None = None
    srtt_ms: float | None = None
    impairer_seen: int | None = None
    impairer_dropped: int | None = None
    max_cwnd: float | None = None
    mean_cwnd: float | None = None
    srtt_median_ms: float | None = None
    """The median of the smoothed RTT sampled through the transfer (queueing shows here)."""
    srtt_p95_ms: float | None = None
    repeat: int = 0
    """Which repetition of its cell (``--runs``) this transfer was."""
    error: str | None = None
    trace: dict[str, list[float | None]] | None = field(default=None, repr=False)

    @property
    def goodput(self) -> float:
        """MB/s (10**6 bytes) of what got through; 0 when nothing did."""
        return self.bytes_done / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def as_dict(self, with_trace: bool) -> dict[str, Any]:
        data = asdict(self)
        data["goodput_MBps"] = self.goodput
        if not with_trace:
            data.pop("trace")
        return data


@dataclass
class SendOutcome:
    """What a sender knows at the end (before the sink's report is checked)."""

    finished: bool
    seconds: float
    acked: int
    retransmits: int | None
    rto_expirations: int | None
    srtt_ms: float | None
    trace: Trace
    t0: float
    error: str | None = None


# ------------------------------------------------------------------------ senders


def send_kernel(
    addr: str, data: bytes, algorithm: str, timeout: float, trace_limit: int
) -> SendOutcome:
    """Send ``data`` over a kernel socket with ``TCP_CONGESTION`` = ``algorithm``.

    Called inside host A (the worker has entered its namespace). The clock starts at
    the first ``sendall`` and stops at the sink's FIN. ``sendall``'s timeout is the
    total budget (Python >= 3.5), so the whole transfer is bounded; a cut socket is
    reset, not closed gracefully, so nothing keeps sending after the measurement.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finished = False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, algorithm.encode())
        sock.settimeout(min(timeout, 15.0))
        t_connect = time.perf_counter()
        sock.connect((addr, SINK_PORT))
        sampler = KernelSampler(sock, SAMPLE_INTERVAL, trace_limit)
        sampler.start()
        t0 = time.perf_counter()
        deadline = t0 + timeout
        try:
            sock.settimeout(timeout)
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while (left := deadline - time.perf_counter()) > 0:
                sock.settimeout(left)
                if not sock.recv(65536):
                    finished = True
                    break
        except TimeoutError:
            pass
        seconds = time.perf_counter() - t0
        sampler.stop()
        info = tcp_info(sock)
        sampler.trace.add(kernel_sample(info, time.perf_counter()))
        return SendOutcome(
            finished=finished,
            seconds=seconds,
            acked=min(max(info["bytes_acked"] - 1, 0), len(data)),  # minus the SYN
            retransmits=info["total_retrans"],
            rto_expirations=None,  # filled from the namespace's TcpExt.TCPTimeouts
            srtt_ms=info["rtt"] / 1000,
            trace=sampler.trace,
            t0=t_connect,
        )
    finally:
        if not finished:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()


def send_aiotcp(
    addr: str,
    data: bytes,
    algorithm: str,
    timeout: float,
    trace_limit: int,
    send_buffer: int,
    loop: LoopKind,
    options: dict[str, Any],
) -> SendOutcome:
    """Send ``data`` with ``aiotcp.testing.transfer.send_bulk`` on a fresh stack.

    Called inside host A, where the stack's raw socket must live. A task
    samples the connection beside it; on timeout the last sample says how far it got.
    """
    trace = Trace(limit=trace_limit)

    async def main() -> SendOutcome:
        loop_ = asyncio.get_running_loop()
        sampler = asyncio.create_task(sample_aiotcp(SINK_PORT, SAMPLE_INTERVAL, trace))
        t_connect = loop_.time()
        try:
            result = await asyncio.wait_for(
                send_bulk(
                    addr,
                    SINK_PORT,
                    data,
                    congestion=algorithm,
                    send_buffer=send_buffer,
                    **options,
                ),
                timeout,
            )
        except TimeoutError:
            row = trace.last
            counters = row.get("counters", {})
            return SendOutcome(
                finished=False,
                seconds=loop_.time() - t_connect,
                acked=trace.samples[-1].acked if trace.samples else 0,
                retransmits=counters.get("retransmits"),
                rto_expirations=counters.get("rto_expirations"),
                srtt_ms=row["srtt"] * 1000 if row.get("srtt") else None,
                trace=trace,
                t0=t_connect,
            )
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        info = result.info
        return SendOutcome(
            finished=True,
            seconds=result.seconds,
            acked=result.nbytes,
            retransmits=info.counters.get("retransmits"),
            rto_expirations=info.counters.get("rto_expirations"),
            srtt_ms=info.srtt * 1000 if info.srtt is not None else None,
            trace=trace,
            t0=t_connect,
        )

    # The outer limit only backs up the inner one (send_bulk's close may take 5 s more).
    return run(main, loop, timeout=timeout + 30.0)


# ---------------------------------------------------------------------- receivers


@dataclass
class ReceiveOutcome:
    """What a receiver counted: every byte up to the kernel sender's FIN, hashed."""

    finished: bool
    seconds: float
    nbytes: int
    sha256: str
    error: str | None = None


def receive_kernel(addr: str, timeout: float) -> ReceiveOutcome:
    """Read a kernel source over a kernel socket (inside host A), hashing as it
    arrives; the clock runs from the end of the handshake to the sender's FIN."""
    digest, nbytes = hashlib.sha256(), 0
    with socket.create_connection((addr, SINK_PORT), timeout=min(timeout, 15.0)) as sock:
        t0 = time.perf_counter()
        deadline = t0 + timeout
        try:
            while (left := deadline - time.perf_counter()) > 0:
                sock.settimeout(left)
                data = sock.recv(1 << 20)
                if not data:
                    return ReceiveOutcome(
                        True, time.perf_counter() - t0, nbytes, digest.hexdigest()
                    )
                digest.update(data)
                nbytes += len(data)
        except TimeoutError:
            pass
        return ReceiveOutcome(False, time.perf_counter() - t0, nbytes, digest.hexdigest())


def receive_aiotcp(addr: str, timeout: float, loop: LoopKind) -> ReceiveOutcome:
    """The same over aiotcp (``aiotcp.testing.transfer.receive_bulk``), on a fresh stack."""

    async def main() -> ReceiveOutcome:
        got = 0

        def progress(n: int) -> None:
            nonlocal got
            got = n

        t0 = asyncio.get_running_loop().time()
        try:
            r = await asyncio.wait_for(receive_bulk(addr, SINK_PORT, on_progress=progress), timeout)
        except TimeoutError:
            return ReceiveOutcome(False, asyncio.get_running_loop().time() - t0, got, "")
        return ReceiveOutcome(True, r.seconds, r.nbytes, r.sha256)

    return run(main, loop, timeout=timeout + 30.0)


@contextlib.contextmanager
def hosts_for(link: Link, subnet: int) -> Iterator[tuple[Host, Host | None, Host]]:
    """Two hosts on one veth; with a bottleneck, two hosts and a router between them
    (``routed_hosts``), which holds the ``tbf``."""
    if link.rate_mbit is None:
        with two_hosts(PREFIX, subnet=subnet) as (a, b):
            yield a, None, b
    else:
        with routed_hosts(PREFIX) as routed:
            yield routed.a, routed.r, routed.b


def impaired(
    ctx: contextlib.ExitStack, receiver: Host, sender: Host, link: Link, router: Host | None
) -> Impairment | None:
    """``link``'s impairment on the receiving host's input (the data direction), and
    its bottleneck on the router's interface towards the receiver, for as long as
    ``ctx`` lasts; None for a bare link."""
    if not link.impaired:
        return None
    if link.rate_mbit is not None and router is not None:
        out = router.run(["ip", "-o", "route", "get", receiver.address]).stdout.split()
        dev = ["dev", out[out.index("dev") + 1], "root"]
        shape = ["tbf", "rate", f"{link.rate_mbit:g}mbit", "burst", "32kbit"]
        router.run(["tc", "qdisc", "replace", *dev, *shape, "latency", f"{link.queue_ms:g}ms"])
        ctx.callback(router.run, ["tc", "qdisc", "del", *dev], check=False)
    if link.fast:
        fast = fast_impair(
            receiver, delay=link.delay, loss=link.loss, seed=link.seed, direction="in", proto="tcp"
        )
        return ctx.enter_context(fast)
    return ctx.enter_context(
        impair(
            receiver,
            loss=link.loss,
            delay=link.delay,
            dup=link.dup,
            reorder=link.reorder,
            seed=link.seed,
            direction="in",
            proto="tcp",
        )
    )


def measure_receiver(
    job: Job, cfg: Settings, result: RunResult, ctx: contextlib.ExitStack, a: Host, b: Host
) -> None:
    """A kernel sender on host B to the receiver on host A.  The sender's
    retransmissions and RTOs are host B's namespace counters: one connection there."""
    ctx.enter_context(kernel_source(b, SINK_PORT, cfg.size, job.sender.algorithm))
    before = kernel_tcp_stats(b)
    with a.entered():
        if job.sender.receiver == "kernel":
            outcome = receive_kernel(b.address, cfg.timeout)
        else:
            outcome = receive_aiotcp(b.address, cfg.timeout, cfg.loop)
    delta = stats_delta(before, kernel_tcp_stats(b))
    result.seconds, result.bytes_done = outcome.seconds, outcome.nbytes
    result.retransmits = delta.get("RetransSegs")
    result.rto_expirations = delta.get("TCPTimeouts")
    if outcome.finished:
        digest = hashlib.sha256(pattern(cfg.size)).hexdigest()  # kernel_source's bytes
        checked(result, outcome.nbytes, outcome.sha256, digest, "received")
    else:
        result.status = "timeout"


def checked(result: RunResult, count: int, got: str, digest: str, who: str) -> None:
    """A finished transfer is ok only if its bytes and SHA-256 are what was sent."""
    result.bytes_done = count
    result.verified = count == result.size and got == digest
    result.status = "ok" if result.verified else "error"
    if not result.verified:
        result.error = f"{who} {count} bytes, sha256 {got[:16]}…"


# ------------------------------------------------------------------------ one run


@dataclass(frozen=True)
class Job:
    """Everything one transfer needs; ``subnet`` keeps concurrent runs apart."""

    sender: Sender
    link: Link
    loss_percent: float
    subnet: int
    keep_trace: bool


@dataclass
class Settings:
    """What every transfer of a run shares (passed to each worker process as JSON)."""

    size: int
    timeout: float
    send_buffer: int
    loop: LoopKind
    available: list[str]
    """The kernel's ``tcp_available_congestion_control``."""
    options: dict[str, Any] = field(default_factory=dict)
    """``--option``: TCP options for aiotcp's senders (A/B runs)."""
    compiled: bool = False
    """aiotcp's compiled modules were in use when the run began.  A worker process
    imports aiotcp afresh: if a source was edited since, it would run the pure
    Python stack (several times slower per packet) and measure that instead."""

    @property
    def trace_limit(self) -> int:
        return int(self.timeout / SAMPLE_INTERVAL) + 1000


def run_one(job: Job, cfg: Settings) -> RunResult:
    """One transfer on fresh namespaces (``198.18.<subnet>.1`` → ``.2``), cleaned up after.

    Never raises for a failed transfer: the error is part of the result, so one bad
    cell does not lose the others.
    """
    sender, link = job.sender, job.link
    result = RunResult(
        sender=sender.name,
        link=link.describe(),
        loss_percent=job.loss_percent,
        status="error",
        size=cfg.size,
        bytes_done=0,
        seconds=0.0,
    )
    if sender.stack == "kernel" and sender.algorithm not in cfg.available:
        result.status = "unavailable"
        result.error = f"{sender.algorithm} not in tcp_available_congestion_control"
        return result
    if cfg.compiled and not compiled_now() and "aiotcp" in (sender.stack, sender.receiver):
        result.error = "aiotcp's compiled modules went stale during the run (a source edited?)"
        return result  # an error: the pure-Python stack is not what the run measures
    imp: Impairment | None = None
    try:
        with hosts_for(link, job.subnet) as (a, router, b), contextlib.ExitStack() as ctx:
            if sender.receiver is not None:
                imp = impaired(ctx, a, b, link, router)  # the data direction is B -> A
                measure_receiver(job, cfg, result, ctx, a, b)
            else:
                imp = impaired(ctx, b, a, link, router)
                measure_sender(job, cfg, result, ctx, a, b)
    except Exception as exc:  # reported in the table, not fatal to the other cells
        result.status = "error"
        result.error = f"{type(exc).__name__}: {exc}"
    if imp is not None:
        result.impairer_seen, result.impairer_dropped = imp.stats.seen, imp.stats.dropped
    return result


def measure_sender(
    job: Job, cfg: Settings, result: RunResult, ctx: contextlib.ExitStack, a: Host, b: Host
) -> None:
    """The sender on host A to a kernel sink on host B."""
    data = pattern(cfg.size, seed=1)
    sink = ctx.enter_context(kernel_sink(b, SINK_PORT))
    before = kernel_tcp_stats(a)
    outcome = _send(job, cfg, data, a, b)
    if job.sender.stack == "kernel":
        outcome.rto_expirations = stats_delta(before, kernel_tcp_stats(a)).get("TCPTimeouts")
    _fill(result, outcome, job)
    if outcome.finished:
        count, got = sink.read_result(timeout=15.0)
        checked(result, count, got, hashlib.sha256(data).hexdigest(), "sink got")
    else:
        result.status = "timeout"


def _send(job: Job, cfg: Settings, data: bytes, a: Host, b: Host) -> SendOutcome:
    with a.entered():
        if job.sender.stack == "kernel":
            return send_kernel(b.address, data, job.sender.algorithm, cfg.timeout, cfg.trace_limit)
        return send_aiotcp(
            b.address,
            data,
            job.sender.algorithm,
            cfg.timeout,
            cfg.trace_limit,
            cfg.send_buffer,
            cfg.loop,
            cfg.options,
        )


def _fill(result: RunResult, outcome: SendOutcome, job: Job) -> None:
    result.seconds = outcome.seconds
    result.bytes_done = outcome.acked
    result.retransmits = outcome.retransmits
    result.rto_expirations = outcome.rto_expirations
    result.srtt_ms = outcome.srtt_ms
    cwnds = [s.cwnd for s in outcome.trace.samples]
    if cwnds:
        result.max_cwnd = max(cwnds)
        result.mean_cwnd = sum(cwnds) / len(cwnds)
    rtts = sorted(s.srtt for s in outcome.trace.samples if s.srtt is not None)
    if rtts:
        result.srtt_median_ms = rtts[len(rtts) // 2]
        result.srtt_p95_ms = rtts[min(len(rtts) - 1, len(rtts) * 95 // 100)]
    if job.keep_trace:
        result.trace = outcome.trace.columns(outcome.t0)


def run_jobs(jobs: list[Job], cfg: Settings, parallel: bool) -> list[RunResult]:
    """Run ``jobs`` one after another, or all at once, each in its own interpreter.

    A process per transfer, not a thread: concurrent aiotcp senders would otherwise
    share one GIL (in a trial at 1 % loss, threads cost aiotcp ~4 % of its goodput),
    and every transfer starts from the same clean state. The workers are in our
    process group, so Ctrl-C reaches them and each removes its own namespaces.
    """
    results: list[RunResult] = []
    if parallel:
        procs = [_start_worker(job, cfg) for job in jobs]
        for job, proc in zip(jobs, procs, strict=True):
            results.append(_finish_worker(job, cfg, proc))
            _progress(results[-1])
        return results
    for job in jobs:
        results.append(_finish_worker(job, cfg, _start_worker(job, cfg)))
        _progress(results[-1])
    return results


def _start_worker(job: Job, cfg: Settings) -> subprocess.Popen[str]:
    spec = json.dumps({"job": asdict(job), "settings": asdict(cfg)})
    cmd = [sys.executable, str(Path(__file__).resolve()), "--job", spec]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish_worker(job: Job, cfg: Settings, proc: subprocess.Popen[str]) -> RunResult:
    """The worker's result (its last stdout line), or an error result saying why not.

    The worker's stderr (its own, and the sink's and impairer's) is shown only for a
    failed transfer: a cut one always makes the sink print a connection-reset
    traceback, which says nothing new.
    """
    try:
        out, err = proc.communicate(timeout=cfg.timeout + 120.0)  # its own limit comes first
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    lines = out.strip().splitlines()
    if proc.returncode == 0 and lines:
        result = result_from_dict(json.loads(lines[-1]))
    else:
        result = RunResult(
            sender=job.sender.name,
            link=job.link.describe(),
            loss_percent=job.loss_percent,
            status="error",
            size=cfg.size,
            bytes_done=0,
            seconds=0.0,
            error=f"worker exited with {proc.returncode}",
        )
    if result.status == "error" and err.strip():
        print(f"--- stderr of {job.sender.name}, {job.link.describe()}:", file=sys.stderr)
        print("\n".join(err.strip().splitlines()[-30:]), file=sys.stderr, flush=True)
    return result


def worker_main(spec: str) -> int:
    """``--job``: run one transfer here and print its result as one JSON line."""
    data = json.loads(spec)
    j, settings = data["job"], data["settings"]
    job = Job(
        sender=Sender(**j["sender"]),
        link=Link(**j["link"]),
        loss_percent=j["loss_percent"],
        subnet=j["subnet"],
        keep_trace=j["keep_trace"],
    )
    result = run_one(job, Settings(**settings))
    print(json.dumps(result.as_dict(with_trace=job.keep_trace)), flush=True)
    return 0


def _progress(r: RunResult) -> None:
    extra = f" ({r.error})" if r.error else ""
    print(
        f"  {r.link:<36} {r.sender:<15} {r.status:<8} {r.goodput:9.3f} MB/s "
        f"{r.bytes_done / 1e6:7.1f} MB in {r.seconds:6.1f} s, retrans {r.retransmits}{extra}",
        flush=True,
    )


# ------------------------------------------------------------------------- the run


def cell_seed(base: int, loss_percent: float) -> int:
    """The seed of a cell depends on its loss rate only: adding cells changes no other."""
    return base * 100_003 + round(loss_percent * 1000)


def available_congestion() -> list[str]:
    path = Path("/proc/sys/net/ipv4/tcp_available_congestion_control")
    return sorted(path.read_text().split()) if path.exists() else []


def kernel_wmem_max() -> int:
    """Largest send buffer the kernel sender may autotune to (``tcp_wmem[2]``)."""
    return int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


def compiled_now() -> bool:
    """Whether this process runs aiotcp's compiled modules (``aiotcp._compiled``)."""
    return _compiled.COMPILED


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Calibration, then every cell; returns the JSON report."""
    cfg = Settings(
        size=args.size,
        timeout=args.timeout,
        send_buffer=args.send_buffer or kernel_wmem_max(),
        loop=args.loop,
        available=available_congestion(),
        options=dict(args.option),
        compiled=compiled_now(),
    )
    cleanup_stale(PREFIX)
    t_start = time.monotonic()
    calibration: list[RunResult] = []
    if not args.skip_calibration:
        print("calibration (what the impairer costs):", flush=True)
        cubic_k, cubic_a = Sender("kernel", "cubic"), Sender("aiotcp", "cubic")
        bare, passthrough = Link(0.0, 0.0, 0, impaired=False), Link(0.0, 0.0, 0)
        python_helper = Link(0.0, 0.0, 0, helper="python")
        jobs = [Job(cubic_k, link, 0.0, 0, False) for link in (bare, passthrough, python_helper)]
        jobs.append(Job(cubic_a, bare, 0.0, 0, False))
        calibration = run_jobs(jobs, cfg, parallel=False)
    cells: list[dict[str, Any]] = []
    cwnd_loss = pick_cwnd_cell(args.loss, args.cwnd_loss)
    for delay_ms, loss_percent in itertools.product(args.delay_ms, args.loss):
        seed = cell_seed(args.seed, loss_percent)
        link = Link(loss_percent / 100, delay_ms / 1000, seed, helper=args.helper)
        parallel = loss_percent >= args.parallel_from
        how = "concurrent" if parallel else "one at a time"
        print(f"delay {delay_ms:g} ms, loss {loss_percent:g} % ({how}):")
        keep = loss_percent == cwnd_loss and delay_ms == args.delay_ms[0]
        cells.append(measure_cell(args, cfg, {"delay_ms": delay_ms}, link, parallel, keep))
    if args.bottleneck:
        print("bottleneck, deep queue (one at a time):")
        link = bottleneck(cell_seed(args.seed, 0.0) + 2)
        fields = {"profile": "bottleneck", "delay_ms": link.delay * 1000}
        cells.append(measure_cell(args, cfg, fields, link, False, True))
    if args.profile_a:
        print("profile A (concurrent):")
        link = profile_a(cell_seed(args.seed, 5.0) + 1)
        fields = {"profile": "A", "delay_ms": link.delay * 1000}
        cells.append(measure_cell(args, cfg, fields, link, True, False))
    return {
        "when": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "host": {
            "kernel": platform.release(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "tcp_available_congestion_control": cfg.available,
        },
        "settings": {
            "size": args.size,
            "delay_ms": args.delay_ms[0],
            "delays_ms": args.delay_ms,
            "direction": args.direction,
            "delay_placement": "one way, the data direction (impairer on the receiver's INPUT)",
            "loss_placement": "data direction only; ACKs neither delayed nor dropped",
            "timeout_s": args.timeout,
            "aiotcp_send_buffer": cfg.send_buffer,
            "aiotcp_loop": args.loop,
            "aiotcp_options": cfg.options,
            "parallel_from_percent": args.parallel_from,
            "seed": args.seed,
            "sample_interval_s": SAMPLE_INTERVAL,
            "cwnd_loss_percent": cwnd_loss,
        },
        "seconds": time.monotonic() - t_start,
        "calibration": calibration,
        "cells": cells,
    }


def measure_cell(
    args: argparse.Namespace,
    cfg: Settings,
    fields: dict[str, Any],
    link: Link,
    parallel: bool,
    keep: bool,
) -> dict[str, Any]:
    """Every measured sender over ``link``, ``--runs`` times, the first time's traces
    kept if ``keep``.  Every repetition meets the same drops (the seed is the
    cell's): with a new seed each time, a run's goodput would follow where its
    drops fell (in slow start or not: 3 to 22 MB/s for the same sender at 20 ms /
    0.1 %) and the spread would measure the seeds, not the stacks.

    ``parallel`` runs the slow transfers together; the fast ones go one at a time
    after them — BBR's, and any at 0 ms — where sharing two CPUs with a dozen
    others would measure the CPU (aiotcp needs more of it per byte)."""
    runs: list[RunResult] = []
    for repeat in range(args.runs):
        columns = measured_columns(args)
        jobs = [
            Job(s, link, link.loss * 100, i, keep and repeat == 0) for i, s in enumerate(columns)
        ]
        together = [j for j in jobs if parallel and not fast_transfer(j)]
        alone = [j for j in jobs if j not in together]
        for r in run_jobs(together, cfg, parallel=True) + run_jobs(alone, cfg, parallel=False):
            r.repeat = repeat
            runs.append(r)
    return {
        **fields,
        "loss_percent": link.loss * 100,
        "seed": link.seed,
        "parallel": parallel,
        "runs": runs,
    }


def fast_transfer(job: Job) -> bool:
    """A transfer that CPU could limit: BBR keeps its rate through loss, and with no
    delay every algorithm moves tens of MB/s."""
    return job.sender.algorithm == "bbr" or job.link.delay < 0.005


def by_sender(cell: dict[str, Any]) -> dict[str, list[RunResult]]:
    """A cell's runs per sender, in the order they ran."""
    out: dict[str, list[RunResult]] = {}
    for r in cell["runs"]:
        out.setdefault(r.sender, []).append(r)
    return out


def median_run(runs: list[RunResult]) -> RunResult:
    """The run with the median goodput (of an even number, the lower middle one)."""
    ordered = sorted(runs, key=lambda r: r.goodput)
    return ordered[(len(ordered) - 1) // 2]


def measured_columns(args: argparse.Namespace) -> list[Sender]:
    """The senders (and receivers) of ``--direction``, of ``--algorithms`` only."""
    wanted = args.algorithms
    return [
        c
        for d in directions(args.direction)
        for c in COLUMNS[d][0]
        if wanted is None or c.algorithm in wanted
    ]


def directions(direction: str) -> list[str]:
    """``--direction``: which tables (``COLUMNS``) a run measures."""
    return ["send", "receive"] if direction == "both" else [direction]


def pick_cwnd_cell(losses: list[float], wanted: float) -> float:
    """The cell whose cwnd is plotted: ``wanted`` if measured, else the nearest lossy one."""
    if wanted in losses:
        return wanted
    lossy = [p for p in losses if p > 0] or losses
    return min(lossy, key=lambda p: abs(math.log10(max(p, 1e-3)) - math.log10(max(wanted, 1e-3))))


# -------------------------------------------------------------------------- output


def _fmt_goodput(r: RunResult | None) -> str:
    if r is None or r.status == "unavailable":
        return "n/a"
    if r.status == "ok":
        return f"{r.goodput:.3g}"
    return f"{r.goodput:.3g} ({r.status}, {r.bytes_done / 1e6:.1f} MB)"


def _ratio(
    runs: dict[str, RunResult],
    ours: str,
    theirs: str,
    all_ours: list[RunResult] | None = None,
) -> str:
    a, k = runs.get(ours), runs.get(theirs)
    if a is None or k is None or a.status != "ok" or k.status != "ok" or not k.goodput:
        return "–"
    text = f"{a.goodput / k.goodput:.2f}"
    if all_ours is not None and len(all_ours) > 1:
        text += f" ({min(r.goodput for r in all_ours) / k.goodput:.2f})"
    return text


def _opt(value: float | int | None, fmt: str = "{}") -> str:
    return "–" if value is None else fmt.format(value)


def markdown(report: dict[str, Any]) -> str:
    """The tables of ``<out>.md`` (also printed at the end of the run)."""
    s = report["settings"]
    lines = [
        f"# Congestion control under loss: aiotcp vs the Linux kernel ({report['when']})",
        "",
        f"`{report['command']}` — {report['seconds']:.0f} s; kernel {report['host']['kernel']},"
        f" {report['host']['cpus']} CPUs, Python {report['host']['python']}.",
        "",
        f"- {s['size'] / 1e6:g} MB per transfer, goodput in MB/s (10^6 B/s); a sender's from"
        " its first byte written to the kernel sink's FIN, a receiver's from the end of the"
        " handshake to the kernel source's FIN; bytes and SHA-256 checked.",
        f"- Link: {delays_text(s)} ms delay {s['delay_placement']}; random loss on the"
        f" {s['loss_placement']}. RTT ≈ the delay + ~1 ms.",
        f"- Impairer seeded per loss rate (base seed {s['seed']}): every transfer of a cell"
        " meets the same drop sequence. Fresh namespaces, peer and impairer per transfer.",
        f"- aiotcp send buffer {s['aiotcp_send_buffer']} B (the kernel's tcp_wmem max), loop"
        f" {s['aiotcp_loop']}. Cells with loss ≥ {s['parallel_from_percent']:g} % ran their"
        " transfers concurrently (separate processes and namespaces), except BBR's and"
        " those at 0 ms, which ran one at a time after them, as did every other cell's.",
        f"- Per-transfer limit {s['timeout_s']:g} s; a cut transfer shows its goodput so far.",
        "- Receivers: the retransmissions and RTOs are the kernel sender's (its namespace).",
    ]
    for direction in directions(s.get("direction", "send")):
        lines += goodput_table(report, direction)
    lines += latency_table(report)
    lines += [
        "",
        "## Every transfer",
        "",
        "| delay ms / loss % | sender | status | MB/s | MB | s | retransmits | RTOs"
        " | dropped / seen (impairer) | srtt ms | cwnd max / mean (segments) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in report["cells"]:
        for r in cell["runs"]:
            lines.append(_detail_row(cell_label(cell), r))
    if report["calibration"]:
        lines += [
            "",
            "## Calibration: the impairer's own cost (no delay, no loss)",
            "",
            "| link | sender | status | MB/s | s | retransmits | srtt ms |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
        for r in report["calibration"]:
            lines.append(
                f"| {r.link} | {r.sender} | {r.status} | {r.goodput:.1f} | {r.seconds:.2f} |"
                f" {_opt(r.retransmits)} | {_opt(r.srtt_ms, '{:.2f}')} |"
            )
    lines += ["", "RTOs: aiotcp `rto_expirations`; kernel `TcpExt.TCPTimeouts` of its namespace."]
    lines.append(
        "Retransmits: aiotcp `counters.retransmits`; kernel `tcpi_total_retrans`; to a"
        " receiver: the kernel sender's namespace's `Tcp.RetransSegs`."
    )
    return "\n".join(lines) + "\n"


def goodput_table(report: dict[str, Any], direction: str) -> list[str]:
    """One direction's goodput per cell, with its ratio columns."""
    all_columns, all_pairs = COLUMNS[direction]
    measured = {r.sender for cell in report["cells"] for r in cell["runs"]}
    columns = [x for x in all_columns if x.name in measured]
    pairs = [p for p in all_pairs if p[0] in measured and p[1] in measured]
    title, note = {
        "send": (
            "Goodput (MB/s): aiotcp and kernel senders to a kernel sink",
            "Ratios are aiotcp / kernel with the same algorithm (aiotcp newreno vs kernel reno).",
        ),
        "receive": (
            "Goodput (MB/s): a kernel sender to an aiotcp or a kernel receiver",
            "Ratios are the same kernel sender's goodput to aiotcp / to the kernel.",
        ),
    }[direction]
    lines = [
        "",
        f"## {title}",
        "",
        "| delay ms / loss % | "
        + " | ".join(x.name for x in columns)
        + " | "
        + " | ".join(label for _, _, label in pairs)
        + " |",
        "|---:|" + "---:|" * (len(columns) + len(pairs)),
    ]
    repeated = False
    for cell in report["cells"]:
        every = by_sender(cell)
        if not any(x.name in every for x in columns):
            continue
        repeated = repeated or any(len(v) > 1 for v in every.values())
        runs = {name: median_run(v) for name, v in every.items()}
        row = [cell_label(cell)]
        row += [_fmt_goodput(runs.get(x.name)) for x in columns]
        row += [_ratio(runs, o, t, every.get(o)) for o, t, _ in pairs]
        lines.append("| " + " | ".join(row) + " |")
    if repeated:
        note += (
            " Each cell ran several times (`--runs`): goodputs are the median run's;"
            " a ratio is the medians' ratio, and in brackets the worst aiotcp run over"
            " the kernel's median. Every run of a cell meets the same drops."
        )
    return [*lines, "", note]


def latency_table(report: dict[str, Any]) -> list[str]:
    """The bottleneck cell's queueing: smoothed RTT through each transfer, against the
    20 ms (+ ~1 ms) the path has without a queue."""
    cells = [c for c in report["cells"] if c.get("profile") == "bottleneck"]
    if not cells:
        return []
    lines = [
        "",
        "## Latency under load: 32 Mbit/s, a 1 s queue, 20 ms, no loss",
        "",
        "| sender | MB/s | srtt median ms | srtt p95 ms | retransmits |",
        "|---|---:|---:|---:|---:|",
    ]
    for runs in by_sender(cells[0]).values():
        r = median_run(runs)
        lines.append(
            f"| {r.sender} | {_fmt_goodput(r)} | {_opt(r.srtt_median_ms, '{:.1f}')} |"
            f" {_opt(r.srtt_p95_ms, '{:.1f}')} | {_opt(r.retransmits)} |"
        )
    lines += ["", "The path's RTT without a queue is the delay plus ~1 ms (the impairer)."]
    return lines


def delays_text(settings: dict[str, Any]) -> str:
    """The run's delays (a report from before the delay matrix has one)."""
    return ", ".join(f"{d:g}" for d in settings.get("delays_ms", [settings["delay_ms"]]))


def cell_label(cell: dict[str, Any]) -> str:
    """A cell's first column: ``delay ms / loss %`` (a report from before the delay
    matrix has the loss alone)."""
    if "profile" in cell:
        return f"profile {cell['profile']}"
    if "delay_ms" not in cell:
        return f"{cell['loss_percent']:g}"
    return f"{cell['delay_ms']:g} / {cell['loss_percent']:g}"


def _detail_row(loss: str, r: RunResult) -> str:
    dropped = f"{r.impairer_dropped} / {r.impairer_seen}" if r.impairer_seen is not None else "–"
    cwnd = (
        f"{r.max_cwnd:.0f} / {r.mean_cwnd:.1f}"
        if r.max_cwnd is not None and r.mean_cwnd is not None
        else "–"
    )
    status = r.status if not r.error else f"{r.status}: {r.error}"
    sender = f"{r.sender} #{r.repeat + 1}" if r.repeat else r.sender
    return (
        f"| {loss} | {sender} | {status} | {r.goodput:.3f} | {r.bytes_done / 1e6:.1f} |"
        f" {r.seconds:.1f} | {_opt(r.retransmits)} | {_opt(r.rto_expirations)} | {dropped} |"
        f" {_opt(r.srtt_ms, '{:.1f}')} | {cwnd} |"
    )


def to_json(report: dict[str, Any]) -> dict[str, Any]:
    """The report with results as plain dicts; cwnd traces only where recorded."""
    out = dict(report)
    out["calibration"] = [r.as_dict(False) for r in report["calibration"]]
    out["cells"] = [
        {**cell, "runs": [r.as_dict(r.trace is not None) for r in cell["runs"]]}
        for cell in report["cells"]
    ]
    return out


def result_from_dict(data: dict[str, Any]) -> RunResult:
    """Inverse of :meth:`RunResult.as_dict` (worker results, ``--replot``)."""
    return RunResult(**{k: v for k, v in data.items() if k != "goodput_MBps"})


def from_json(data: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`to_json` (for ``--replot``)."""
    report = dict(data)
    report["calibration"] = [result_from_dict(d) for d in data["calibration"]]
    report["cells"] = [
        {**c, "runs": [result_from_dict(d) for d in c["runs"]]} for c in data["cells"]
    ]
    return report


_NUMBER_LIST = re.compile(r"\[\s*((?:-?[0-9.e+-]+|null)(?:,\s*(?:-?[0-9.e+-]+|null))*)\s*\]")


def compact_lists(text: str) -> str:
    """Put each list of numbers on one line: cwnd traces would be a number per line."""
    return _NUMBER_LIST.sub(lambda m: "[" + "".join(m.group(1).split()) + "]", text)


def write_outputs(report: dict[str, Any], out: Path) -> list[Path]:
    """Write ``.md``, ``.json`` and (with matplotlib) both PNGs; return what was written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    md, js = out.with_name(out.name + ".md"), out.with_name(out.name + ".json")
    md.write_text(markdown(report))
    js.write_text(compact_lists(json.dumps(to_json(report), indent=1)) + "\n")
    written = [md, js]
    try:
        import congestion_plot
    except ImportError as exc:  # matplotlib missing: tables and JSON are enough
        print(f"no plots ({exc.name} missing): pip install 'aiotcp[plot]'", file=sys.stderr)
        return written
    written.append(congestion_plot.goodput_plot(report, out.with_name(out.name + ".png")))
    cwnd_png = congestion_plot.cwnd_plot(report, out.with_name(out.name + "-cwnd.png"))
    if cwnd_png is not None:
        written.append(cwnd_png)
    latency_png = congestion_plot.latency_plot(report, out.with_name(out.name + "-latency.png"))
    if latency_png is not None:
        written.append(latency_png)
    return written


# ---------------------------------------------------------------------------- CLI


def parse_size(text: str) -> int:
    """``50M`` → 50,000,000 (decimal k/M/G, as the MB/s in the table)."""
    units = {"k": 10**3, "m": 10**6, "g": 10**9}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def parse_delays(text: str) -> list[float]:
    try:
        delays = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of delays in ms: {text}") from None
    if not delays or any(d < 0 for d in delays):
        raise argparse.ArgumentTypeError(f"delays must be >= 0 ms: {text}")
    return delays


def parse_losses(text: str) -> list[float]:
    """``0,0.1,1,3`` (percent) → sorted unique floats, each in [0, 100)."""
    losses = sorted({float(x) for x in text.split(",") if x.strip()})
    if not losses or any(not 0 <= p < 100 for p in losses):
        raise argparse.ArgumentTypeError(f"loss rates must be percentages in [0, 100): {text}")
    return losses


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=parse_size("50M"),
        help="bytes per transfer (k/M/G = 10^3/10^6/10^9)",
    )
    parser.add_argument(
        "--loss",
        type=parse_losses,
        default=parse_losses("0,0.1,1,3"),
        help="loss rates in percent, comma-separated",
    )
    parser.add_argument(
        "--delay-ms",
        type=parse_delays,
        default=[20.0],
        help="one-way delays of the data direction, comma-separated: a row of cells each",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench/results/congestion"),
        help="output prefix: <out>.md .json .png -cwnd.png -latency.png",
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per transfer")
    parser.add_argument(
        "--cwnd-loss",
        type=float,
        default=1.0,
        help="loss rate (percent) of the cell whose cwnd is plotted",
    )
    parser.add_argument(
        "--parallel-from",
        type=float,
        default=1.0,
        help="cells with at least this loss (percent) run senders concurrently",
    )
    parser.add_argument("--seed", type=int, default=1, help="base seed of the impairer")
    parser.add_argument(
        "--send-buffer",
        type=parse_size,
        default=0,
        help="aiotcp send_buffer (0: the kernel's tcp_wmem max)",
    )
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument(
        "--profile-a",
        action="store_true",
        help="one more cell: 20 ms, 5 %% loss, 2 %% duplicates, 10 %% reordering, 32 Mbit/s",
    )
    add_option_argument(parser, "aiotcp's senders")
    parser.add_argument(
        "--helper",
        choices=("auto", "c", "python"),
        default="auto",
        help="the impairer of the delay/loss cells: the C helper, the Python one, or"
        " 'auto' (C for delay alone; Python as soon as there is loss)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="repetitions of every cell, each with its own seed (tables: the median run)",
    )
    parser.add_argument(
        "--bottleneck",
        action="store_true",
        help="one more cell: 20 ms, no loss, 32 Mbit/s with a 1 s queue (latency under load)",
    )
    parser.add_argument(
        "--direction",
        choices=("send", "receive", "both"),
        default="send",
        help="measure aiotcp as the sender (to a kernel sink), as the receiver (of a"
        " kernel sender), or both",
    )
    parser.add_argument(
        "--algorithms",
        type=lambda text: set(text.split(",")),
        default=None,
        help="measure only these algorithms (comma-separated: newreno,reno,cubic,bbr)",
    )
    parser.add_argument("--skip-calibration", action="store_true")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # internal: one worker transfer
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="JSON",
        help="no measurement: rewrite the outputs from a saved <out>.json",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fast check: --size 5M --loss 0,1 (a minute)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.loss = parse_size("5M"), [0.0, 1.0]
    if args.size <= 0 or args.timeout <= 0:
        parser.error("--size and --timeout must be > 0, --delay-ms >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.job is not None:
        return worker_main(args.job)
    if args.replot is not None:
        report = from_json(json.loads(args.replot.read_text()))
        print(markdown(report))
        print("wrote " + ", ".join(str(p) for p in write_outputs(report, args.out)))
        return 0
    if os.geteuid() != 0:
        print("needs root (network namespaces, raw sockets, iptables, NFQUEUE)", file=sys.stderr)
        return 2
    report = run_benchmark(args)
    written = write_outputs(report, args.out)
    print()
    print(markdown(report))
    print("wrote " + ", ".join(str(p) for p in written))
    failed = [r for c in report["cells"] for r in c["runs"] if r.status == "error"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
