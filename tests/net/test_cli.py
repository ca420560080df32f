"""``python -m aiotcp guard status|cleanup`` and the demo, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aiotcp.testing.netns import Host, read_line


def aiotcp_cli(host: Host, *args: str) -> str:
    return str(host.run([sys.executable, "-m", "aiotcp", *args]).stdout)


def test_guard_status_and_cleanup_after_a_killed_process(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    assert "no aiotcp firewall rules" in aiotcp_cli(a, "guard", "status")
    code = "from aiotcp.io.guards import make_guard; import time; g = make_guard();"
    code += "g.install(); print(g.claim(8080), flush=True); time.sleep(60)"
    proc = a.python(["-c", code], stdout=subprocess.PIPE, text=True)
    read_line(proc.stdout, 20.0)
    status = aiotcp_cli(a, "guard", "status")
    assert f"AIOTCP-{proc.pid}  pid {proc.pid}  running" in status
    for command in ("iptables", "ip6tables"):
        assert f"{command} -A AIOTCP-{proc.pid} -p tcp -m tcp --sport 8080 -j DROP" in status
    assert "nothing to remove" in aiotcp_cli(a, "guard", "cleanup")
    proc.kill()
    proc.wait(10)
    assert "DEAD" in aiotcp_cli(a, "guard", "status")
    assert f"removed: AIOTCP-{proc.pid}" in aiotcp_cli(a, "guard", "cleanup")
    assert "no aiotcp firewall rules" in aiotcp_cli(a, "guard", "status")


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_demo_runs_and_verifies_its_echo(family: str) -> None:
    from aiotcp.testing.netns import require_root

    require_root()
    flags = ["--ipv6"] if family == "ipv6" else []
    out = subprocess.run(
        [sys.executable, "-m", "aiotcp", "demo", *flags], capture_output=True, text=True, timeout=90
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Flags [S], seq" in out.stdout and "Flags [S.]" in out.stdout
    host_a = {"ipv4": "198.18.0.1", "ipv6": "[fd00:198:18::1]"}[family]
    assert f"Host A {host_a.strip('[]')}" in out.stdout
    assert f"server {host_a}:8080 <-> " in out.stdout
    assert "Echo verified: True" in out.stdout
    assert "RST seen from the peer: False" in out.stdout
    for transition in ("LISTEN -> SYN-RECEIVED", "SYN-SENT -> ESTABLISHED", "TIME-WAIT -> CLOSED"):
        assert transition in out.stdout
    assert "Both fetches verified: True" in out.stdout


def test_help_is_plain_text() -> None:
    """``--help`` is read in a terminal: no reST markup from docstrings."""
    out = subprocess.run(
        [sys.executable, "-m", "aiotcp", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "python -m aiotcp" in out and "``" not in out


def test_demo_without_root_says_to_run_it_as_root() -> None:
    """The demo builds namespaces: only root can.  Its message says so, and does not
    suggest ``setcap``, which cannot grant that."""
    from aiotcp.testing.netns import require_root

    require_root()  # to run it as someone else, below
    # In a user namespace of its own the process is no longer root (euid 65534)
    # but can still read the root-owned interpreter.
    out = subprocess.run(
        ["unshare", "--user", sys.executable, "-m", "aiotcp", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stdout + out.stderr
    assert "run it as root" in out.stdout and "setcap" not in out.stdout
