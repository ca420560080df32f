"""The docker-compose two-host demo, for real: private dockerd, local base image, compose up."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest

from aiotcp.testing.netns import require_root

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "docker" / "run-demo.sh"


@pytest.mark.timeout(900)
def test_docker_compose_demo() -> None:
    require_root()
    for tool in ("dockerd", "docker-compose", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is not installed (.ci/setup installs it)")
    links_before = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    out = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=880)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    for line in (
        "server listening on port 8080",
        "LISTEN -> SYN-RECEIVED",
        "SYN-SENT -> ESTABLISHED",
        "client TRANSFER VERIFIED",
        "client CLEAN CLOSE",
        "LAST-ACK -> CLOSED",
    ):
        assert line in log, f"{line!r} missing:\n{log[-3000:]}"
    # Torn down: no dockerd of ours, no leftover bridges or work directories.
    assert subprocess.run(["pgrep", "-f", "aiotcp-docker"], capture_output=True).returncode == 1
    links_after = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert links_after.count("\n") == links_before.count("\n")
    assert not list(pathlib.Path("/tmp").glob("aiotcp-docker.*"))
