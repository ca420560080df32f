"""The docker demo's entry point, between namespaces (the fast twin of tests/docker)."""

from __future__ import annotations

import subprocess
import sys

from aiotcp.testing.netns import Host, read_line


def test_twohost_demo_between_namespaces(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    server = b.python(
        ["-m", "aiotcp.demo.twohost", "server", "--port", "8080"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert "listening on port 8080" in read_line(server.stdout, 20)
    client = a.run(
        [sys.executable, "-m", "aiotcp.demo.twohost", "client", b.address_of(family)], timeout=60
    )
    out, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert "SYN-SENT -> ESTABLISHED" in client.stdout
    assert "TRANSFER VERIFIED" in client.stdout and "CLEAN CLOSE" in client.stdout
    assert "LISTEN -> SYN-RECEIVED" in out and "CLEAN CLOSE" in out
