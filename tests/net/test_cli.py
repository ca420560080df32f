"""``python -m aiotcp guard status|cleanup`` and the demo, as a user runs them."""

from __future__ import annotations

import subprocess
import sys

from aiotcp.testing.netns import Host, read_line


def aiotcp_cli(host: Host, *args: str) -> str:
    return str(host.run([sys.executable, "-m", "aiotcp", *args]).stdout)


def test_guard_status_and_cleanup_after_a_killed_process(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    assert "no aiotcp firewall rules" in aiotcp_cli(a, "guard", "status")
    code = "from aiotcp.io.guard import make_guard; import time; g = make_guard();"
    code += "g.install(); print(g.claim(8080), flush=True); time.sleep(60)"
    proc = a.python(["-c", code], stdout=subprocess.PIPE, text=True)
    read_line(proc.stdout, 20.0)
    status = aiotcp_cli(a, "guard", "status")
    assert f"AIOTCP-{proc.pid}  pid {proc.pid}  running" in status
    assert "--sport 8080 -j DROP" in status
    assert "nothing to remove" in aiotcp_cli(a, "guard", "cleanup")
    proc.kill()
    proc.wait(10)
    assert "DEAD" in aiotcp_cli(a, "guard", "status")
    assert f"removed: AIOTCP-{proc.pid}" in aiotcp_cli(a, "guard", "cleanup")
    assert "no aiotcp firewall rules" in aiotcp_cli(a, "guard", "status")


def test_demo_runs_and_verifies_its_echo() -> None:
    from aiotcp.testing.netns import require_root

    require_root()
    out = subprocess.run(
        [sys.executable, "-m", "aiotcp", "demo"], capture_output=True, text=True, timeout=90
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Flags [S], seq" in out.stdout and "Flags [S.]" in out.stdout
    assert "Echo verified: True" in out.stdout
    assert "RST seen from the peer: False" in out.stdout
    for transition in ("LISTEN -> SYN-RECEIVED", "SYN-SENT -> ESTABLISHED", "TIME-WAIT -> CLOSED"):
        assert transition in out.stdout
    assert "Both fetches verified: True" in out.stdout
