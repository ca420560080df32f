"""Each example runs as a user would run it, inside the test namespaces."""

from __future__ import annotations

import pathlib
import sys

from aiotcp.testing.netns import Host, kernel_echo_server

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def test_syn_probe_reports_open_and_closed_ports(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    with kernel_echo_server(b, 7):
        out = a.run([sys.executable, str(EXAMPLES / "syn_probe.py"), b.address, "7", "9"]).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"{b.address}:7 open (SYN-ACK")
    assert lines[1] == f"{b.address}:9 closed (RST)"
