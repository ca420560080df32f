"""Congestion window over time, for aiotcp connections and kernel sockets alike.

Both samplers poll, every ``interval`` seconds, the same numbers ``ss -ti`` prints:

- aiotcp: the rows of ``aiotcp.connections()`` (``cwnd``/``ssthresh`` in bytes,
  ``mss``, ``snd_una``, ``counters``). Polling the public snapshot rather than hooking
  the core keeps this working while aiotcp/core's loss recovery is rewritten, and a
  10 ms poll costs the sender about 1 % of its loop;
- kernel: ``getsockopt(TCP_INFO)`` (``struct tcp_info``: ``tcpi_snd_cwnd`` in segments,
  ``tcpi_total_retrans``, ``tcpi_bytes_acked``) from a helper thread, which runs while
  the sending thread blocks in ``sendall`` with the GIL released.

Windows are reported in segments (aiotcp's bytes divided by its MSS) so the two stacks
share one axis. A sample shows the window between ACKs, not every change: enough to
see slow start, the multiplicative decrease at each loss and the growth between
losses (linear for Reno, the cubic curve for CUBIC), which is what the plot is for.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiotcp

TCP_INFO_FORMAT = "=8B24I4Q6IQ3Q2I2Q2I"
"""``struct tcp_info`` up to ``tcpi_reord_seen`` (Linux 5.4+; <linux/tcp.h>)."""
TCP_INFO_FIELDS = (
    "state",
    "ca_state",
    "retransmits",
    "probes",
    "backoff",
    "options",
    "wscale",
    "flags",
    "rto",
    "ato",
    "snd_mss",
    "rcv_mss",
    "unacked",
    "sacked",
    "lost",
    "retrans",
    "fackets",
    "last_data_sent",
    "last_ack_sent",
    "last_data_recv",
    "last_ack_recv",
    "pmtu",
    "rcv_ssthresh",
    "rtt",
    "rttvar",
    "snd_ssthresh",
    "snd_cwnd",
    "advmss",
    "reordering",
    "rcv_rtt",
    "rcv_space",
    "total_retrans",
    "pacing_rate",
    "max_pacing_rate",
    "bytes_acked",
    "bytes_received",
    "segs_out",
    "segs_in",
    "notsent_bytes",
    "min_rtt",
    "data_segs_in",
    "data_segs_out",
    "delivery_rate",
    "busy_time",
    "rwnd_limited",
    "sndbuf_limited",
    "delivered",
    "delivered_ce",
    "bytes_sent",
    "bytes_retrans",
    "dsack_dups",
    "reord_seen",
)
KERNEL_INFINITE_SSTHRESH = 0x7FFFFFFF
AIOTCP_INFINITE_SSTHRESH = 1 << 30
"""Initial "arbitrarily high" ssthresh of each stack (RFC 5681 §3.1): not plotted."""


def tcp_info(sock: socket.socket) -> dict[str, int]:
    """``struct tcp_info`` of a kernel TCP socket as a dict (times in µs, as the kernel).

    A shorter struct (older kernel) is zero-padded, so missing fields read as 0.
    """
    size = struct.calcsize(TCP_INFO_FORMAT)
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, size)
    raw = raw.ljust(size, b"\0")
    return dict(zip(TCP_INFO_FIELDS, struct.unpack(TCP_INFO_FORMAT, raw), strict=True))


@dataclass
class Sample:
    """One observation: seconds since the first byte was written, windows in segments."""

    t: float
    cwnd: float
    ssthresh: float | None
    """``None`` while ssthresh still has its initial "infinite" value."""
    acked: int
    """Payload bytes cumulatively acknowledged so far."""
    retransmits: int
    srtt: float | None = None
    """Smoothed RTT in ms (None before the first sample): the queue's delay shows here."""
    pacing: float | None = None
    """Pacing rate in bytes/s (the kernel reports one even when it does not pace)."""


@dataclass
class Trace:
    """Samples of one transfer, bounded in number (``limit``) so memory is too."""

    limit: int
    samples: list[Sample] = field(default_factory=list)
    last: dict[str, Any] = field(default_factory=dict)
    """The most recent raw snapshot (aiotcp row or tcp_info): counters if a run is cut."""

    def add(self, sample: Sample) -> None:
        if len(self.samples) < self.limit:
            self.samples.append(sample)

    def shifted(self, t0: float) -> list[Sample]:
        """Samples with time measured from ``t0`` (the first byte written)."""
        return [
            Sample(s.t - t0, s.cwnd, s.ssthresh, s.acked, s.retransmits, s.srtt, s.pacing)
            for s in self.samples
        ]

    def columns(self, t0: float = 0.0) -> dict[str, list[float | None]]:
        """Column form for JSON: ``t``/``cwnd``/``ssthresh`` lists, rounded for size."""
        shifted = self.shifted(t0)
        return {
            "t": [round(s.t, 4) for s in shifted],
            "cwnd": [round(s.cwnd, 2) for s in shifted],
            "ssthresh": [None if s.ssthresh is None else round(s.ssthresh, 2) for s in shifted],
            "srtt": [None if s.srtt is None else round(s.srtt, 2) for s in shifted],
            "pacing": [None if s.pacing is None else round(s.pacing) for s in shifted],
        }


# ----------------------------------------------------------------------------- kernel


class KernelSampler:
    """Reads ``TCP_INFO`` of ``sock`` every ``interval`` s in a thread until :meth:`stop`.

    Times are ``time.perf_counter()`` values; the sender shifts them to its own t0.
    """

    def __init__(self, sock: socket.socket, interval: float, limit: int) -> None:
        self.sock = sock
        self.interval = interval
        self.trace = Trace(limit=limit)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp_info sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        # Bounded: stops when told, when the socket goes away, or after ``limit`` samples.
        while not self._stop.is_set() and len(self.trace.samples) < self.trace.limit:
            try:
                info = tcp_info(self.sock)
            except OSError:
                return
            self.trace.last = info
            self.trace.add(kernel_sample(info, time.perf_counter()))
            self._stop.wait(self.interval)


def kernel_sample(info: dict[str, int], now: float) -> Sample:
    ssthresh = info["snd_ssthresh"]
    return Sample(
        t=now,
        cwnd=float(info["snd_cwnd"]),
        ssthresh=None if ssthresh >= KERNEL_INFINITE_SSTHRESH else float(ssthresh),
        acked=info["bytes_acked"],
        retransmits=info["total_retrans"],
        srtt=info["rtt"] / 1000 if info["rtt"] else None,
        pacing=float(info["pacing_rate"]) if info["pacing_rate"] else None,
    )


# ----------------------------------------------------------------------------- aiotcp


def aiotcp_sample(row: dict[str, Any], now: float) -> Sample:
    """A sample from one ``aiotcp.connections()`` row (windows in bytes there)."""
    mss = max(int(row["mss"]), 1)
    ssthresh = int(row["ssthresh"])
    return Sample(
        t=now,
        cwnd=row["cwnd"] / mss,
        ssthresh=None if ssthresh >= AIOTCP_INFINITE_SSTHRESH else ssthresh / mss,
        acked=aiotcp_acked(row),
        retransmits=int(row["counters"].get("retransmits", 0)),
        srtt=row["srtt"] * 1000 if row.get("srtt") else None,
        pacing=row.get("pacing_rate"),
    )


def aiotcp_acked(row: dict[str, Any]) -> int:
    """Payload bytes acknowledged: ``snd_una - iss - 1`` (the SYN takes one number)."""
    return max((int(row["snd_una"]) - int(row["iss"]) - 1) & 0xFFFFFFFF, 0)


async def sample_aiotcp(remote_port: int, interval: float, trace: Trace) -> None:
    """Sample the running loop's connection to ``remote_port`` until cancelled.

    Runs as a task beside the transfer, which cancels it when done; ``trace.limit``
    bounds it even if it were not. Times are ``loop.time()`` values.
    """
    loop = asyncio.get_running_loop()
    while len(trace.samples) < trace.limit:
        for row in aiotcp.connections():
            if row["state"] != "LISTEN" and row["remote"][1] == remote_port:
                trace.last = row
                trace.add(aiotcp_sample(row, loop.time()))
                break
        await asyncio.sleep(interval)
