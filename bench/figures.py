"""The pictures in docs/, made by the project's own tools (never drawn by hand).

- ``docs/img/lossy-transfer.png``: ``python -m aiotcp plot`` on the capture and state
  log of one aiotcp transfer to a kernel sink over a path with 20 ms of delay and 2 %
  loss on the data direction (``aiotcp.testing.impair``, seeded);
- ``docs/img/congestion.png`` and ``docs/img/congestion-cwnd.png``: ``bench/congestion.py``
  (goodput against loss, and cwnd over time in the 1 % cell), with ``--out`` in a
  scratch directory; its ``.md`` and ``.json`` are printed and kept there.

    sudo .venv/bin/python bench/figures.py [--only lossy|congestion] [--size 20M]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from aiotcp.plot import plot
from aiotcp.testing.impair import impair
from aiotcp.testing.loops import run
from aiotcp.testing.netns import kernel_sink, pattern, two_hosts
from aiotcp.testing.transfer import send_bulk

ROOT = Path(__file__).resolve().parent.parent
IMG = ROOT / "docs" / "img"
PORT = 7000


def lossy_transfer(scratch: Path) -> Path:
    """One 2 MB aiotcp → kernel transfer over 20 ms and 2 % loss, plotted."""
    pcap, events = scratch / "lossy.pcap", scratch / "lossy-events.jsonl"
    data = pattern(2 * 1024 * 1024, seed=3)
    with two_hosts("fig") as (a, b), kernel_sink(b, PORT) as sink:
        with impair(b, loss=0.02, delay=0.02, seed=5, direction="in", proto="tcp"):
            with a.entered():
                result = run(
                    lambda: send_bulk(b.address, PORT, data),
                    timeout=120,
                    pcap=str(pcap),
                    events=str(events),
                )
        assert sink.read_result() == (len(data), result.sha256)
    print("lossy transfer:", result.summary())
    return plot(pcap, IMG / "lossy-transfer.png", events)


def congestion(scratch: Path, size: str) -> list[Path]:
    out = scratch / "congestion"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "congestion.py"), "--size", size, "--out", str(out)],
        check=True,
    )
    print((scratch / "congestion.md").read_text())
    copied = []
    for name in ("congestion.png", "congestion-cwnd.png"):
        copied.append(Path(shutil.copy(scratch / name, IMG / name)))
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("lossy", "congestion"))
    parser.add_argument("--size", default="20M", help="bench/congestion.py's --size")
    args = parser.parse_args()
    IMG.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="aiotcp-figures-"))
    made = []
    if args.only in (None, "lossy"):
        made.append(lossy_transfer(scratch))
    if args.only in (None, "congestion"):
        made += congestion(scratch, args.size)
    for path in made:
        print(f"wrote {path.relative_to(ROOT)}")
    print(f"scratch files in {scratch}")


if __name__ == "__main__":
    main()
