"""The two PNGs of bench/congestion.py: goodput vs loss rate, and cwnd over time.

A module of its own so that importing it is the test for matplotlib (the ``plot``
extra): ``congestion.py`` writes its tables and JSON without it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt

if TYPE_CHECKING:
    from congestion import RunResult

STYLE: dict[str, dict[str, Any]] = {
    "aiotcp newreno": {"color": "tab:blue", "linestyle": "-", "marker": "o"},
    "aiotcp cubic": {"color": "tab:orange", "linestyle": "-", "marker": "s"},
    "aiotcp bbr": {"color": "tab:purple", "linestyle": "-", "marker": "D"},
    "kernel reno": {"color": "tab:blue", "linestyle": "--", "marker": "o", "mfc": "none"},
    "kernel cubic": {"color": "tab:orange", "linestyle": "--", "marker": "s", "mfc": "none"},
    "kernel bbr": {"color": "tab:purple", "linestyle": "--", "marker": "D", "mfc": "none"},
    "kernel reno to aiotcp": {"color": "tab:green", "linestyle": "-", "marker": "^"},
    "kernel cubic to aiotcp": {"color": "tab:red", "linestyle": "-", "marker": "v"},
    "kernel reno to kernel": {
        "color": "tab:green",
        "linestyle": "--",
        "marker": "^",
        "mfc": "none",
    },
    "kernel cubic to kernel": {"color": "tab:red", "linestyle": "--", "marker": "v", "mfc": "none"},
    "kernel bbr to aiotcp": {"color": "tab:brown", "linestyle": "-", "marker": "P"},
    "kernel bbr to kernel": {"color": "tab:brown", "linestyle": "--", "marker": "P", "mfc": "none"},
}
"""Same colour = same algorithm (and direction); solid = aiotcp, dashed with hollow
markers = kernel.  The receive direction's curves name the receiver."""
MSS = 1448


def goodput_plot(report: dict[str, Any], path: Path) -> Path:
    """Goodput (log scale) per sender against the loss rate, one point per cell, and
    one panel per delay.

    Loss rates sit at even spacing (0 % has no place on a log axis). Cut transfers
    are marked with a red ×. The grey curve is the Mathis et al. (1997) model
    ``MSS / RTT · sqrt(3/2) / sqrt(p)`` for the panel's delay, the rate a Reno
    flow with independent losses settles to; the dotted line is the impairer's
    pass-through rate from the calibration (kernel cubic through it with no delay, no loss).
    """
    default = report["settings"]["delay_ms"]
    matrix = [c for c in report["cells"] if "profile" not in c]  # profiles: in the table
    delays = sorted({c.get("delay_ms", default) for c in matrix})
    fig, axes = plt.subplots(
        1, len(delays), figsize=(8 * len(delays), 5), constrained_layout=True, squeeze=False
    )
    for ax, delay_ms in zip(axes[0], delays, strict=True):
        cells = [c for c in matrix if c.get("delay_ms", default) == delay_ms]
        _goodput_panel(ax, report, cells, delay_ms)
    fig.suptitle(f"{report['settings']['size'] / 1e6:g} MB per transfer: aiotcp vs Linux")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _goodput_panel(ax: Any, report: dict[str, Any], cells: list[Any], delay_ms: float) -> None:
    losses = [c["loss_percent"] for c in cells]
    xs = list(range(len(losses)))
    names = [name for name in STYLE if any(r.sender == name for c in cells for r in c["runs"])]
    for name in names:
        points = [(x, _run(c, name)) for x, c in zip(xs, cells, strict=True)]
        got = [(x, r) for x, r in points if r is not None and r.goodput > 0]
        ax.plot([x for x, _ in got], [r.goodput for _, r in got], label=name, **STYLE[name])
        cut = [(x, r.goodput) for x, r in got if r.status != "ok"]
        if cut:
            cut_x, cut_y = [x for x, _ in cut], [y for _, y in cut]
            ax.scatter(cut_x, cut_y, marker="x", color="red", s=80, zorder=5)
    delay = delay_ms / 1000
    if delay > 0:
        model = [
            (x, MSS / delay * math.sqrt(1.5 / (p / 100)) / 1e6)
            for x, p in zip(xs, losses, strict=True)
            if p > 0
        ]
        if model:
            model_x, model_y = [x for x, _ in model], [y for _, y in model]
            ax.plot(model_x, model_y, color="grey", marker=".", linewidth=1, label="Mathis model")
    ceiling = [
        r.goodput
        for r in report["calibration"]
        if r.status == "ok" and r.sender == "kernel cubic" and r.link != "no impairer"
    ]
    if ceiling:
        ax.axhline(
            ceiling[0], color="grey", linestyle=":", label="impairer pass-through (no delay)"
        )
    ax.scatter([], [], marker="x", color="red", label="cut at --timeout")
    ax.set_yscale("log")
    ax.set_xticks(xs, [f"{p:g} %" for p in losses])
    ax.set_xlabel(f"random loss, data direction ({delay_ms:g} ms delay)")
    ax.set_ylabel("goodput, MB/s (log)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def cwnd_plot(report: dict[str, Any], path: Path, zoom: float = 5.0) -> Path | None:
    """cwnd (solid) and ssthresh (dashed), in segments, per sender in the traced cell.

    One row per sender with shared axes: the whole transfer on the left, its first
    ``zoom`` seconds on the right, where slow start, the cut at each loss and the
    growth in between (linear for Reno, the cubic curve for CUBIC) can be told apart.
    Returns ``None`` when no cell kept traces.
    """
    cell = next((c for c in report["cells"] if any(r.trace for r in c["runs"])), None)
    if cell is None:
        return None
    runs = [r for r in cell["runs"] if r.trace]
    fig, axes = plt.subplots(
        len(runs),
        2,
        figsize=(13, 2.4 * len(runs)),
        sharey=True,
        constrained_layout=True,
        squeeze=False,
        gridspec_kw={"width_ratios": [2, 1]},
    )
    longest = max((t for r in runs for t in (r.trace or {})["t"] if t is not None), default=1.0)
    for (whole, first), r in zip(axes, runs, strict=True):
        trace = r.trace or {}
        color = STYLE.get(r.sender, {}).get("color")
        ssthresh = [float("nan") if v is None else v for v in trace["ssthresh"]]
        for ax in (whole, first):
            ax.plot(trace["t"], trace["cwnd"], color=color, linewidth=0.9, label="cwnd")
            ax.plot(trace["t"], ssthresh, "k--", linewidth=0.7, label="ssthresh")
            ax.grid(True, alpha=0.3)
        whole.set_xlim(0, longest)
        first.set_xlim(0, zoom)
        status = "" if r.status == "ok" else f", {r.status}"
        whole.set_title(
            f"{r.sender}: {r.goodput:.2f} MB/s, {r.retransmits} retransmits{status}",
            fontsize=9,
            loc="left",
        )
        first.set_title(f"first {zoom:g} s", fontsize=9, loc="left")
        whole.set_ylabel("segments")
        first.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("seconds since connect (sampled every 10 ms)")
    axes[-1, 1].set_xlabel("seconds since connect")
    delay_ms = cell.get("delay_ms", report["settings"]["delay_ms"])
    fig.suptitle(f"cwnd at {cell['loss_percent']:g} % loss, {delay_ms:g} ms delay")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def latency_plot(report: dict[str, Any], path: Path) -> Path | None:
    """The bottleneck cell (``--bottleneck``): smoothed RTT over time per sender — the
    queue each algorithm keeps — and the pacing rate each reports.  ``None`` without
    that cell."""
    cell = next((c for c in report["cells"] if c.get("profile") == "bottleneck"), None)
    if cell is None:
        return None
    runs = [r for r in cell["runs"] if r.trace and "srtt" in r.trace]
    if not runs:
        return None
    fig, (rtt_ax, pace_ax) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for r in runs:
        trace = r.trace or {}
        style = STYLE.get(r.sender, {})
        line = {"color": style.get("color"), "linestyle": style.get("linestyle", "-")}
        srtt = [float("nan") if v is None else v for v in trace["srtt"]]
        pacing = [float("nan") if v is None else v * 8 / 1e6 for v in trace.get("pacing", [])]
        rtt_ax.plot(trace["t"], srtt, linewidth=0.9, label=r.sender, **line)
        if pacing:
            pace_ax.plot(trace["t"], pacing, linewidth=0.9, label=r.sender, **line)
    rtt_ax.set_ylabel("smoothed RTT (ms)")
    rtt_ax.set_yscale("log")
    pace_ax.set_ylabel("pacing rate (Mbit/s)")
    pace_ax.set_yscale("log")
    pace_ax.axhline(32, color="k", linestyle=":", linewidth=0.8, label="bottleneck")
    pace_ax.set_xlabel("seconds since connect (sampled every 10 ms)")
    for ax in (rtt_ax, pace_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    fig.suptitle("Latency under load: 32 Mbit/s, a 1 s queue, 20 ms, no loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _run(cell: dict[str, Any], name: str) -> RunResult | None:
    runs = sorted((r for r in cell["runs"] if r.sender == name), key=lambda r: r.goodput)
    return runs[(len(runs) - 1) // 2] if runs else None  # the median run (``--runs``)
