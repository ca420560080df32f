"""Pictures of TCP: a tcptrace-style time-sequence graph and a state timeline, as PNG.

    python -m aiotcp plot trace.pcap [--events events.jsonl] [-o out.png]

The time-sequence graph shows, for the connection that carried the most data
(sequence numbers relative to its ISN): each data segment as a vertical bar
from its first to its last byte, retransmissions in red, the receiver's ACK line
(green) and its window's right edge (olive).  The state timeline below shows, per
connection, the states recorded in an event log (``Stack(events=...)``); without
a log it marks the SYN, FIN and RST segments seen in the capture instead.
Needs matplotlib (``pip install aiotcp[plot]``).
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiotcp.core.segment import ACK, FIN, RST, SYN, DropReason, Segment
from aiotcp.io.packet import format_ip, parse_ipv4_tcp, parse_ipv6_tcp

LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL = 1, 101, 113
Flow = tuple[str, int, str, int]


@dataclass
class Seen:
    time: float
    src: str
    dst: str
    seg: Segment


def read_pcap(path: str | Path) -> list[Seen]:
    """TCP segments of a classic pcap (raw IP of either version, Ethernet or Linux
    cooked)."""
    data = Path(path).read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack_from(endian + "I", data, 20)[0]
    skip = {LINKTYPE_RAW: 0, LINKTYPE_ETHERNET: 14, LINKTYPE_LINUX_SLL: 16}.get(linktype)
    if skip is None:
        raise ValueError(f"unsupported pcap link type {linktype}")
    out, off = [], 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack_from(endian + "IIII", data, off)
        frame = memoryview(data)[off + 16 + skip : off + 16 + incl]
        off += 16 + incl
        if not frame:
            continue
        parse = parse_ipv6_tcp if frame[0] >> 4 == 6 else parse_ipv4_tcp
        parsed = parse(frame, verify_checksum=False)
        if isinstance(parsed, DropReason):
            continue
        t = sec + frac / (1e9 if nano else 1e6)
        out.append(Seen(t, format_ip(parsed.src), format_ip(parsed.dst), parsed.segment))
    return out


def _flow(s: Seen) -> Flow:
    return (s.src, s.seg.src_port, s.dst, s.seg.dst_port)


def busiest_flow(seen: list[Seen]) -> Flow | None:
    volume: dict[Flow, int] = defaultdict(int)
    for s in seen:
        volume[_flow(s)] += len(s.seg.payload)
    return max(volume, key=lambda f: volume[f]) if volume else None


def plot(pcap: str | Path, out: str | Path, events: str | Path | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seen = read_pcap(pcap)
    flow = busiest_flow(seen)
    if flow is None:
        raise ValueError(f"{pcap}: no TCP segments")
    reverse = (flow[2], flow[3], flow[0], flow[1])
    t0 = seen[0].time
    fig, (ax, tl) = plt.subplots(
        2, 1, figsize=(11, 8), gridspec_kw={"height_ratios": [3, 1]}, constrained_layout=True
    )
    # ---- time-sequence graph of the busiest direction
    isn = next((s.seg.seq for s in seen if _flow(s) == flow and s.seg.flags & SYN), None)
    if isn is None:
        isn = next(s.seg.seq for s in seen if _flow(s) == flow)
    wscale = next((s.seg.wscale or 0 for s in seen if _flow(s) == reverse and s.seg.flags & SYN), 0)
    highest = 0
    ack_t, ack_y, win_y = [], [], []
    for s in seen:
        rel_t = s.time - t0
        if _flow(s) == flow and s.seg.payload:
            lo = (s.seg.seq - isn) & 0xFFFFFFFF
            hi = lo + len(s.seg.payload)
            retransmit = lo < highest
            highest = max(highest, hi)
            if retransmit:  # on top and marked, or the ACK line would hide it
                ax.vlines(rel_t, lo, hi, colors="red", linewidth=2.5, zorder=5)
                ax.scatter([rel_t], [lo], color="red", marker="x", s=30, zorder=6)
            else:
                ax.vlines(rel_t, lo, hi, colors="black", linewidth=1.2)
        elif _flow(s) == reverse and s.seg.flags & ACK:
            rel_ack = (s.seg.ack - isn) & 0xFFFFFFFF
            if rel_ack > 1 << 31:
                continue
            ack_t.append(rel_t)
            ack_y.append(rel_ack)
            win_y.append(rel_ack + (s.seg.window << (0 if s.seg.flags & SYN else wscale)))
    if ack_t:
        ax.step(ack_t, ack_y, where="post", color="green", linewidth=1, label="ACK")
        ax.step(ack_t, win_y, where="post", color="olive", linewidth=1, label="window edge")
    ax.plot([], [], color="black", label="data")
    ax.plot([], [], color="red", label="retransmission")
    ax.set_title(f"time-sequence {flow[0]}:{flow[1]} -> {flow[2]}:{flow[3]}")
    ax.set_xlabel("seconds")
    ax.set_ylabel("relative sequence number")
    ax.legend(loc="upper left")
    # ---- state timeline
    if events is not None:
        _timeline_from_events(tl, Path(events), t0)
    else:
        _timeline_from_flags(tl, seen, t0)
    path = Path(out)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_COLORS = {
    "SYN-SENT": "#9ecae1", "SYN-RECEIVED": "#6baed6", "ESTABLISHED": "#31a354",
    "FIN-WAIT-1": "#fdae6b", "FIN-WAIT-2": "#fd8d3c", "CLOSING": "#e6550d",
    "TIME-WAIT": "#969696", "CLOSE-WAIT": "#bcbddc", "LAST-ACK": "#756bb1", "LISTEN": "#dddddd",
}  # fmt: skip


def _timeline_from_events(ax: Any, path: Path, t0: float) -> None:
    rows: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        rows[f"{ev['local']} <-> {ev['remote']}"].append((ev["time"] - t0, ev["new"]))
    for i, (_name, changes) in enumerate(sorted(rows.items())):
        for (start, state), (end, _) in zip(
            changes, [*changes[1:], (changes[-1][0], "")], strict=True
        ):
            if state != "CLOSED" and end > start:
                ax.barh(i, end - start, left=start, color=_COLORS.get(state, "#cccccc"))
                ax.text(start, i, state, fontsize=7, va="center")
    ax.set_yticks(range(len(rows)), list(sorted(rows)), fontsize=7)
    ax.set_xlabel("seconds")
    ax.set_title("states (event log)")


def _timeline_from_flags(ax: Any, seen: list[Seen], t0: float) -> None:
    flows: dict[Flow, int] = {}
    for s in seen:
        key = min(_flow(s), (s.dst, s.seg.dst_port, s.src, s.seg.src_port))
        row = flows.setdefault(key, len(flows))
        for bit, name, color in ((SYN, "SYN", "blue"), (FIN, "FIN", "orange"), (RST, "RST", "red")):
            if s.seg.flags & bit:
                ax.scatter(s.time - t0, row, color=color, marker="|", s=200)
                ax.text(s.time - t0, row + 0.15, name, fontsize=7)
    labels = [f"{f[0]}:{f[1]} <-> {f[2]}:{f[3]}" for f in flows]
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("seconds")
    ax.set_title("SYN / FIN / RST per connection (no event log given)")
