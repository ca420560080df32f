"""Measured bulk transfers between aiotcp and a kernel peer (tests, bench, examples).

:func:`send_bulk` and :func:`receive_bulk` run on the aiotcp side (inside a running
stack, e.g. under :func:`aiotcp.testing.loops.run`) against the kernel peers of
:mod:`aiotcp.testing.netns` (``kernel_sink`` / ``kernel_source``). Each returns a
:class:`TransferResult`: bytes, seconds, SHA-256 of what aiotcp sent or received,
and the connection's last ``get_extra_info("aiotcp")`` snapshot (counters, RTT,
cwnd), so a test can assert byte-exactness and print what TCP had to do.

:func:`kernel_tcp_stats` reads the kernel peer's side of the story (its
retransmissions, timeouts, SACK and reordering counters) from the namespace's
``/proc/net/snmp`` and ``/proc/net/netstat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiotcp
from aiotcp.core.connection import ConnectionInfo
from aiotcp.testing.netns import Host, read_line

ProgressHook = Callable[[int], None]
"""Called with the number of bytes transferred so far, after every chunk."""

KERNEL_STATS = (
    "Tcp.RetransSegs",
    "TcpExt.TCPTimeouts",
    "TcpExt.TCPLossProbes",
    "TcpExt.TCPFastRetrans",
    "TcpExt.TCPSlowStartRetrans",
    "TcpExt.TCPSACKReorder",
    "TcpExt.TCPDSACKRecv",
    "TcpExt.TCPOFOQueue",
    "TcpExt.TCPSackRecovery",
    "TcpExt.TCPRenoRecovery",
)
"""The kernel counters :func:`kernel_tcp_stats` reports (``nstat`` names)."""


@dataclass
class TransferResult:
    """One finished transfer, seen from aiotcp."""

    direction: str
    """``"aiotcp->kernel"`` or ``"kernel->aiotcp"``."""
    nbytes: int
    """Payload bytes aiotcp sent (all acknowledged) or received (up to EOF)."""
    seconds: float
    """From the end of the handshake to the peer's FIN (after the last byte)."""
    sha256: str
    """Hex digest of those bytes."""
    info: ConnectionInfo
    """The connection's state at the end: counters, srtt, rto, cwnd, ssthresh."""

    @property
    def goodput(self) -> float:
        """Application bytes per second, in MB/s (10**6 bytes)."""
        return self.nbytes / self.seconds / 1e6 if self.seconds > 0 else float("inf")

    @property
    def counters(self) -> dict[str, int]:
        return self.info.counters

    def summary(self) -> str:
        """One line: size, time, goodput and the counters that show recovery work."""
        c = self.counters
        keys = "retransmits fast_retransmits rto_expirations dup_acks ooo_segments ooo_dropped"
        keys += " segments_in segments_out"
        srtt = f"{self.info.srtt * 1000:.1f}ms" if self.info.srtt is not None else "-"
        return (
            f"{self.direction}: {self.nbytes / 1e6:.1f} MB in {self.seconds:.2f} s = "
            f"{self.goodput:.2f} MB/s; srtt {srtt} rto {self.info.rto * 1000:.0f}ms; "
            + " ".join(f"{k}={c.get(k, 0)}" for k in keys.split())
        )


async def send_bulk(
    host: str,
    port: int,
    data: bytes,
    *,
    chunk: int = 65536,
    on_progress: ProgressHook | None = None,
    **tcp_options: Any,
) -> TransferResult:
    """Send ``data`` to a kernel sink over aiotcp; return once the sink has it all.

    After the last byte aiotcp half-closes (``write_eof``) and reads until the
    peer's FIN: a sink that closes when it reads EOF (``kernel_sink``) sends that
    FIN only after every byte arrived, so the clock stops when the data is
    delivered, not merely queued. Errors (``TimeoutError`` when retransmission gives
    up, ``ConnectionResetError``) propagate; the writer is closed either way.
    """
    reader, writer = await aiotcp.open_connection(host, port, **tcp_options)
    loop = asyncio.get_running_loop()
    try:
        t0 = loop.time()
        for offset in range(0, len(data), chunk):
            writer.write(data[offset : offset + chunk])
            await writer.drain()
            if on_progress is not None:
                on_progress(min(offset + chunk, len(data)))
        writer.write_eof()
        extra = await reader.read()
        if extra:
            raise AssertionError(f"the sink sent {len(extra)} unexpected bytes")
        seconds = loop.time() - t0
        info: ConnectionInfo = writer.get_extra_info("aiotcp")
    finally:
        await _close(writer)
    digest = hashlib.sha256(data).hexdigest()
    return TransferResult("aiotcp->kernel", len(data), seconds, digest, info)


async def receive_bulk(
    host: str,
    port: int,
    *,
    chunk: int = 1 << 20,
    on_progress: ProgressHook | None = None,
    **tcp_options: Any,
) -> TransferResult:
    """Read everything a kernel source sends until its FIN, hashing as it arrives."""
    reader, writer = await aiotcp.open_connection(host, port, **tcp_options)
    loop = asyncio.get_running_loop()
    digest = hashlib.sha256()
    nbytes = 0
    try:
        t0 = loop.time()
        while data := await reader.read(chunk):
            digest.update(data)
            nbytes += len(data)
            if on_progress is not None:
                on_progress(nbytes)
        seconds = loop.time() - t0
        info: ConnectionInfo = writer.get_extra_info("aiotcp")
    finally:
        await _close(writer)
    return TransferResult("kernel->aiotcp", nbytes, seconds, digest.hexdigest(), info)


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close without masking the transfer's own outcome (an error is already raised)."""
    writer.close()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(writer.wait_closed(), 5.0)


def kernel_tcp_stats(host: Host) -> dict[str, int]:
    """``KERNEL_STATS`` of ``host``'s namespace (cumulative since it was created)."""

    def read() -> dict[str, int]:
        values: dict[str, int] = {}
        for name in ("snmp", "netstat"):
            lines = (Path("/proc/thread-self/net") / name).read_text().splitlines()
            for head, body in zip(lines[::2], lines[1::2], strict=True):
                proto, *keys = head.split()
                _, *nums = body.split()
                for key, num in zip(keys, nums, strict=True):
                    values[f"{proto.rstrip(':')}.{key}"] = int(num)
        return {k: values.get(k, 0) for k in KERNEL_STATS}

    return host.call(read)


def stats_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """``after - before`` per key, with the namespace prefixes dropped for printing."""
    return {k.split(".", 1)[1]: after[k] - before.get(k, 0) for k in after}


# ------------------------------------------------------------------ arrival order


@dataclass
class Arrival:
    """One captured IPv4 packet: its IP ID (the sender's packet counter) and TCP seq."""

    ip_id: int
    seq: int
    length: int


@dataclass
class ReorderStats:
    """RFC 4737 §4.1 reordering of a captured stream, judged by the sender's IP ID.

    Linux numbers the packets of a connected DF socket consecutively (IP ID + 1 per
    segment, retransmissions included), so the IP ID is the send order: a packet is
    *reordered* when it arrives after one sent later. Exact copies (same IP ID seen
    before) are *duplicates* and are not judged again. Only packets that carry data
    count: the handshake's IP IDs come from another counter (a SYN-ACK has ID 0).
    """

    packets: int = 0
    reordered: int = 0
    duplicates: int = 0

    @property
    def fraction(self) -> float:
        judged = self.packets - self.duplicates
        return self.reordered / judged if judged else 0.0

    def __str__(self) -> str:
        return (
            f"{self.packets} packets, {self.reordered} reordered ({self.fraction:.1%}), "
            f"{self.duplicates} duplicates"
        )


def reorder_stats(arrivals: list[Arrival]) -> ReorderStats:
    """Count reordered and duplicate data packets in arrival order (IP ID unwrapped)."""
    arrivals = [pkt for pkt in arrivals if pkt.length > 0]
    stats = ReorderStats(packets=len(arrivals))
    seen: set[int] = set()
    highest: int | None = None
    last: int | None = None
    for pkt in arrivals:
        # Unwrap relative to the previous arrival: reordering spans far less than 2**15.
        if last is None:
            order = pkt.ip_id
        else:
            delta = (pkt.ip_id - (last & 0xFFFF) + 0x8000) % 0x10000 - 0x8000
            order = last + delta
        last = order
        if order in seen:
            stats.duplicates += 1
            continue
        seen.add(order)
        if highest is not None and order < highest:
            stats.reordered += 1
        else:
            highest = order
    return stats


# The recorder runs in its own interpreter inside the namespace: an IPPROTO_TCP raw
# socket gets a copy of every TCP packet *after* netfilter's INPUT hook, so it sees
# the order the stack under test sees, impairment included (tcpdump on the veth
# would see the order before the INPUT hook). Prints "ready", then on SIGTERM one
# line of "ip_id:seq:length" for each packet from the source port.
_RECORDER_CODE = r"""
import signal, socket, struct, sys
port = int(sys.argv[1])
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
sock.settimeout(0.1)
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
seen = []
print("ready", flush=True)
while not stop:
    try:
        pkt = sock.recv(128)
    except (TimeoutError, InterruptedError):
        continue
    ihl = (pkt[0] & 15) * 4
    if len(pkt) < ihl + 14:
        continue
    total, ident = struct.unpack_from("!HH", pkt, 2)
    sport, _, seq = struct.unpack_from("!HHI", pkt, ihl)
    if sport == port:
        seen.append(f"{ident}:{seq}:{total - ihl - (pkt[ihl + 12] >> 4) * 4}")
print(" ".join(seen), flush=True)
"""


@contextlib.contextmanager
def arrival_recorder(host: Host, src_port: int) -> Iterator[list[Arrival]]:
    """Record TCP packets from ``src_port`` as ``host``'s stack receives them.

    The list fills when the block exits. Costs one raw-socket receive per TCP packet
    in a separate process, so the stack under test does not pay for it.
    """
    proc = host.python(["-c", _RECORDER_CODE, str(src_port)], stdout=subprocess.PIPE, text=True)
    arrivals: list[Arrival] = []
    try:
        if read_line(proc.stdout, 15.0).strip() != "ready":
            raise RuntimeError("arrival recorder did not start")
        yield arrivals
        time.sleep(0.1)  # what is in flight now still reaches the socket
    finally:
        out, _ = host.stop(proc, sig=signal.SIGTERM, timeout=10.0)
        for item in out.split():
            ident, seq, length = item.split(":")
            arrivals.append(Arrival(int(ident), int(seq), int(length)))
