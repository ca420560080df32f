"""A very short benchmark that fails only on gross regressions (10x), never on noise.

Ratios against the kernel measured in the same run cancel out the machine's speed;
bench/baseline.json holds the quick-mode ratios this guard compares with.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

from aiotcp.testing.netns import require_root

BENCH = pathlib.Path(__file__).resolve().parents[2] / "bench"
HIGHER_IS_BETTER = ("send_MBps", "receive_MBps", "conn_per_s")
LOWER_IS_BETTER = ("echo_p50_us", "idle_bytes_per_conn")
FACTOR = 10.0


def test_no_gross_regression_against_the_kernel(tmp_path: pathlib.Path) -> None:
    require_root()
    out = tmp_path / "quick.json"
    subprocess.run(
        [sys.executable, str(BENCH / "bench.py"), "--quick", "--json", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    ratios = json.loads(out.read_text())["ratios"]
    baseline = json.loads((BENCH / "baseline.json").read_text())["ratios"]
    problems = []
    for kind, base in baseline.items():
        now = ratios[kind]
        problems += [
            f"{kind} {m}: ratio {now[m]:.3f}, baseline {base[m]:.3f}"
            for m in HIGHER_IS_BETTER
            if now[m] < base[m] / FACTOR
        ]
        problems += [
            f"{kind} {m}: ratio {now[m]:.3f}, baseline {base[m]:.3f}"
            for m in LOWER_IS_BETTER
            if now[m] > base[m] * FACTOR
        ]
    assert not problems, "gross regressions: " + "; ".join(problems)
