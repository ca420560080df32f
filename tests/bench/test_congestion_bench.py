"""bench/congestion.py end to end, tiny: it runs, verifies every transfer, writes its files.

The numbers themselves are not judged (1 MB over a 5 ms link says little about
congestion control); that each sender delivered every byte through the impaired
link and that the table, JSON and plots come out is what would silently break.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import subprocess
import sys

import pytest

from aiotcp.testing.netns import require_root

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench"
SENDERS = {
    "aiotcp newreno",
    "aiotcp cubic",
    "aiotcp bbr",
    "kernel reno",
    "kernel cubic",
    "kernel bbr",
}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_congestion_bench_writes_table_json_and_plots(tmp_path: pathlib.Path) -> None:
    require_root()
    out = tmp_path / "cc"
    cmd = [sys.executable, str(BENCH / "congestion.py"), "--size", "1M", "--loss", "0,1"]
    cmd += ["--delay-ms", "5", "--timeout", "20", "--skip-calibration", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads(out.with_name("cc.json").read_text())
    assert [c["loss_percent"] for c in report["cells"]] == [0.0, 1.0]
    for cell in report["cells"]:
        runs = {r["sender"]: r for r in cell["runs"]}
        assert set(runs) == SENDERS
        for name, r in runs.items():
            if r["status"] == "unavailable":  # a kernel without that algorithm
                assert name.startswith("kernel"), r
                continue
            assert r["status"] == "ok", r
            assert r["verified"] and r["bytes_done"] == 1_000_000, r
            assert r["goodput_MBps"] > 0 and r["retransmits"] is not None, r
        lossy = cell["loss_percent"] > 0
        assert all((r["impairer_dropped"] > 0) == lossy for r in runs.values()), runs
    traced = [r for c in report["cells"] for r in c["runs"] if "trace" in r]
    assert traced and all(len(r["trace"]["t"]) == len(r["trace"]["cwnd"]) > 0 for r in traced)

    table = out.with_name("cc.md").read_text()
    head = (
        "| delay ms / loss % | aiotcp newreno | aiotcp cubic | aiotcp bbr | kernel reno"
        " | kernel cubic | kernel bbr | newreno/reno | cubic/cubic | bbr/bbr | default/default |"
    )
    assert head in table
    assert table in proc.stdout  # the table is printed at the end too
    for png in ("cc.png", "cc-cwnd.png"):
        assert out.with_name(png).read_bytes().startswith(PNG_MAGIC)


def test_congestion_bench_measures_aiotcp_as_the_receiver(tmp_path: pathlib.Path) -> None:
    """``--direction receive``: a kernel sender (reno, cubic) to aiotcp and to the
    kernel over the same impaired link, every byte checked, and its own table."""
    require_root()
    out = tmp_path / "rx"
    cmd = [sys.executable, str(BENCH / "congestion.py"), "--size", "1M", "--loss", "1"]
    cmd += ["--delay-ms", "5", "--timeout", "20", "--skip-calibration", "--out", str(out)]
    cmd += ["--direction", "receive"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    (cell,) = json.loads(out.with_name("rx.json").read_text())["cells"]
    runs = {r["sender"]: r for r in cell["runs"]}
    assert set(runs) == {
        f"kernel {cc} to {receiver}"
        for cc in ("reno", "cubic", "bbr")
        for receiver in ("aiotcp", "kernel")
    }
    for r in runs.values():
        if r["status"] == "unavailable":
            continue
        assert r["status"] == "ok" and r["verified"] and r["bytes_done"] == 1_000_000, r
        assert r["impairer_dropped"] > 0 and r["retransmits"] is not None, r
    table = out.with_name("rx.md").read_text()
    assert "| reno: aiotcp/kernel | cubic: aiotcp/kernel | bbr: aiotcp/kernel |" in table


def test_the_bottleneck_cell_reports_each_algorithms_queueing_delay(
    tmp_path: pathlib.Path,
) -> None:
    """``--bottleneck`` (a 32 Mbit/s ``tbf`` with a deep queue), ``--algorithms`` and
    ``--runs``: only BBR's columns, twice each, the latency table with each sender's
    RTT through the transfer, and the plot of RTT and pacing rate over time."""
    require_root()
    out = tmp_path / "q"
    cmd = [sys.executable, str(BENCH / "congestion.py"), "--size", "1M", "--loss", "0"]
    cmd += ["--delay-ms", "5", "--timeout", "20", "--skip-calibration", "--out", str(out)]
    cmd += ["--algorithms", "bbr", "--bottleneck", "--runs", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    report = json.loads(out.with_name("q.json").read_text())
    bottleneck = [c for c in report["cells"] if c.get("profile") == "bottleneck"]
    assert len(bottleneck) == 1
    for cell in report["cells"]:
        assert sorted((r["sender"], r["repeat"]) for r in cell["runs"]) == [
            ("aiotcp bbr", 0),
            ("aiotcp bbr", 1),
            ("kernel bbr", 0),
            ("kernel bbr", 1),
        ]
    for r in bottleneck[0]["runs"]:
        assert r["status"] == "ok" and r["verified"], r
        assert r["srtt_median_ms"] >= 5 and r["srtt_p95_ms"] >= r["srtt_median_ms"], r
    table = out.with_name("q.md").read_text()
    assert "| delay ms / loss % | aiotcp bbr | kernel bbr | bbr/bbr |" in table
    assert "## Latency under load" in table
    assert "in brackets the worst aiotcp run" in table  # --runs: medians, and the worst
    assert out.with_name("q-latency.png").read_bytes().startswith(PNG_MAGIC)


def test_a_transfer_refuses_to_measure_a_stale_build(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose aiotcp sources were edited after the run began imports the
    pure-Python stack: its transfers become errors instead of slow numbers in the
    table (the kernel's own transfers are unaffected).  No namespaces needed: the
    check comes first."""
    monkeypatch.syspath_prepend(str(BENCH))
    congestion = importlib.import_module("congestion")
    monkeypatch.setattr(congestion, "compiled_now", lambda: False)
    cfg = congestion.Settings(
        size=1000, timeout=1.0, send_buffer=0, loop="asyncio", available=["cubic"], compiled=True
    )
    link = congestion.Link(0.0, 0.0, 0, impaired=False)
    for sender in (
        congestion.Sender("aiotcp", "cubic"),
        congestion.Sender("kernel", "cubic", receiver="aiotcp"),
    ):
        result = congestion.run_one(congestion.Job(sender, link, 0.0, 0, False), cfg)
        assert result.status == "error" and "stale" in (result.error or "")
