"""Packet captures in a test host: tcpdump writes a pcap, scapy reads it back.

tcpdump (not a sniffer thread in the test process) captures, so the capture does not
compete with the stack under test for the GIL and sees exactly what the interface
sees. The context manager returns only once tcpdump has printed "listening on" (the
filter is installed by then), and stops it with SIGINT after the traffic has settled,
so nothing sent inside the block is missed.

Note: on a veth with offloads on, a capture on the *sending* side shows TCP segments
larger than the MTU (GSO) and unfinished checksums; use ``two_hosts(offload=False)``
or capture on the receiving side when segment sizes matter.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiotcp.core.segment import flags_str
from aiotcp.testing.netns import Host, read_line


@dataclass(frozen=True)
class Segment:
    """One captured IPv4/TCP or IPv6/TCP segment, reduced to what protocol tests compare.

    ``src``/``dst`` are the addresses as text (RFC 5952 for IPv6, as ``Host``
    has them); ``len`` is the TCP payload length from the IP header (Ethernet
    padding excluded);
    ``time`` is the capture timestamp in seconds.
    """

    time: float
    src: str
    dst: str
    sport: int
    dport: int
    flags: str
    seq: int
    ack: int
    win: int
    len: int

    def __str__(self) -> str:
        ack = f", ack {self.ack}" if "." in self.flags else ""
        return (
            f"{self.src}.{self.sport} > {self.dst}.{self.dport}: Flags [{self.flags}], "
            f"seq {self.seq}{ack}, win {self.win}, length {self.len}"
        )


def to_segments(packets: list[Any]) -> list[Segment]:
    """Turn scapy packets into :class:`Segment` records (non-TCP packets skipped)."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6

    segments = []
    for pkt in packets:
        tcp = pkt.getlayer(TCP)
        if tcp is None:
            continue
        if (ip := pkt.getlayer(IP)) is not None:
            length = int(ip.len) - int(ip.ihl) * 4 - int(tcp.dataofs) * 4
        elif (ip := pkt.getlayer(IPv6)) is not None:
            # The payload length counts extension headers too; the stack sends none.
            length = int(ip.plen) - int(tcp.dataofs) * 4
        else:
            continue
        segments.append(
            Segment(
                time=float(pkt.time),
                src=str(ip.src),
                dst=str(ip.dst),
                sport=int(tcp.sport),
                dport=int(tcp.dport),
                flags=flags_str(int(tcp.flags)),
                seq=int(tcp.seq),
                ack=int(tcp.ack),
                win=int(tcp.window),
                len=length,
            )
        )
    return segments


@dataclass
class Capture:
    """A capture in progress (inside the block) or finished (after it).

    ``packets`` (scapy) and :meth:`segments` are available after the block exits;
    ``kernel_drops`` is tcpdump's "dropped by kernel" count (should be 0).
    """

    host: Host
    ifname: str
    bpf: str
    path: Path
    pid: int = 0
    packets: list[Any] = field(default_factory=list)
    kernel_drops: int = 0

    def segments(self, port: int | None = None) -> list[Segment]:
        """TCP segments in capture order, optionally only those to/from ``port``."""
        segs = to_segments(self.packets)
        if port is None:
            return segs
        return [s for s in segs if port in (s.sport, s.dport)]


def _settle(path: Path, quiet: float = 0.05, limit: float = 1.0) -> None:
    """Wait until the pcap stops growing (bounded), so in-flight packets are written."""
    deadline = time.monotonic() + limit
    size = -1
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else 0
        if now == size:
            return
        size = now
        time.sleep(quiet)


def _wait_listening(stderr: IO[str] | None, timeout: float = 10.0) -> None:
    """Consume tcpdump's stderr up to its "listening on" line (filter installed)."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while "listening on" not in (seen[-1] if seen else ""):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"tcpdump not listening after {timeout}s: {seen}")
        try:
            seen.append(read_line(stderr, remaining))
        except EOFError:
            raise RuntimeError(f"tcpdump did not start: {''.join(seen).strip()}") from None


@contextlib.contextmanager
def capture(
    host: Host,
    bpf: str = "tcp",
    ifname: str | None = None,
    snaplen: int = 262144,
    buffer_kib: int = 65536,
    save_to: str | Path | None = None,
) -> Iterator[Capture]:
    """Capture on ``host``'s veth (or ``ifname``, e.g. ``"any"``) with a BPF filter.

    ``save_to`` keeps a copy of the pcap (for Wireshark when a test fails).  The
    64 MiB kernel buffer (``-B``) keeps bursts of hundreds of handshakes from
    being dropped before tcpdump reads them; ``kernel_drops`` says if it was not.
    """
    import scapy.layers.inet
    import scapy.layers.inet6
    import scapy.layers.l2  # noqa: F401  (registers Ethernet / Linux-cooked link types)
    from scapy.utils import rdpcap

    workdir = Path(tempfile.mkdtemp(prefix="aiotcp-pcap-"))
    cap = Capture(host=host, ifname=ifname or host.ifname, bpf=bpf, path=workdir / "cap.pcap")
    cmd = ["tcpdump", "-i", cap.ifname, "-n", "-U", "--immediate-mode", "-Z", "root"]
    cmd += ["-B", str(buffer_kib), "-s", str(snaplen), "-w", str(cap.path), bpf]
    proc = host.popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cap.pid = proc.pid
    try:
        _wait_listening(proc.stderr)
        yield cap
        _settle(cap.path)
    finally:
        _, err = host.stop(proc, sig=signal.SIGINT, timeout=5.0)
        if match := re.search(r"(\d+) packets? dropped by kernel", err):
            cap.kernel_drops = int(match.group(1))
        if cap.path.exists() and cap.path.stat().st_size > 0:
            cap.packets = list(rdpcap(str(cap.path)))
            if save_to is not None:
                shutil.copyfile(cap.path, save_to)
        shutil.rmtree(workdir, ignore_errors=True)
