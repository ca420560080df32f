"""Every lesson example runs as a user would run it, and shows what it promises."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from aiotcp.testing.netns import require_root

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    "lesson_handshake.py": [
        "SYN-SENT -> ESTABLISHED",
        "LISTEN -> SYN-RECEIVED",
        "Flags [S]",
        "Flags [S.]",
    ],
    "lesson_close.py": [
        "FIN-WAIT-1 -> FIN-WAIT-2",
        "CLOSE-WAIT -> LAST-ACK",
        "TIME-WAIT -> CLOSED",
    ],
    "lesson_half_close.py": ["in FIN-WAIT-2", "part 4 of the answer", "FIN-WAIT-2 -> TIME-WAIT"],
    "lesson_simultaneous_close.py": ["FIN-WAIT-1 -> CLOSING", "CLOSING -> TIME-WAIT"],
    "lesson_time_wait.py": ["during TIME-WAIT: refused", "after 2*MSL the same 4-tuple connects"],
    "lesson_syn_flood.py": ["8 connections in SYN-RECEIVED", "failed: timed out", "read b'hi\\n'"],
    "lesson_keepalive.py": ["all answered", "TimeoutError"],
}


IPV4_ONLY = {"lesson_syn_flood.py"}
"""The flood's forged sources are an IPv4 /16 routed back into host A."""


@pytest.mark.parametrize(
    ("script", "family"),
    [
        (script, family)
        for script in sorted(EXPECTED)
        for family in ("ipv4", "ipv6")
        if family == "ipv4" or script not in IPV4_ONLY
    ],
)
def test_lesson(script: str, family: str, tmp_path: pathlib.Path) -> None:
    require_root()
    flags = ["--ipv6"] if family == "ipv6" else []
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / script), str(tmp_path), *flags],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    for text in EXPECTED[script]:
        assert text in out.stdout, f"{text!r} missing from:\n{out.stdout}"
    pcaps = sorted(p.name for p in tmp_path.glob("*.pcap"))
    name = script.removeprefix("lesson_").removesuffix(".py").replace("_", "-")
    assert pcaps and set(pcaps) <= {f"lesson-{name}-a.pcap", f"lesson-{name}-b.pcap"}
