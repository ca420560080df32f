"""``python -m aiotcp plot`` turns a stack's pcap and event log into a valid PNG."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import aiotcp
from aiotcp.testing.loops import run
from aiotcp.testing.netns import Host, kernel_echo_server

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_draws_a_png_from_a_recorded_transfer(
    family_hosts: tuple[Host, Host], family: str, tmp_path: pathlib.Path
) -> None:
    a, b = family_hosts
    pcap, events, png = tmp_path / "t.pcap", tmp_path / "e.jsonl", tmp_path / "t.png"

    async def main() -> None:
        reader, writer = await aiotcp.open_connection(b.address_of(family), 7000)
        writer.write(bytes(300_000))
        await reader.readexactly(300_000)
        writer.close()
        await writer.wait_closed()

    with kernel_echo_server(b, 7000), a.entered():
        run(main, pcap=str(pcap), events=str(events), msl=0.2)
    states = [json.loads(line)["new"] for line in events.read_text().splitlines()]
    assert states[:2] == ["SYN-SENT", "ESTABLISHED"]
    for args in ([], ["--events", str(events)]):
        png.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "aiotcp", "plot", str(pcap), "-o", str(png), *args]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (1100, 800)
