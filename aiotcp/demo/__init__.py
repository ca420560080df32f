"""Demos: what aiotcp shows about TCP, runnable as ``python -m aiotcp demo``.

Both parts run between two network namespaces built for the demo (198.18.0.1 and
198.18.0.2, or fd00:198:18::1 and ::2 with ``--ipv6``) and removed afterwards,
with everything they started.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from aiotcp.io.guards import GuardKind

Part = Literal["all", "handshake", "streams"]


def run(
    part: Part = "all",
    *,
    guard_kind: GuardKind = "iptables",
    ipv6: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    """Build the two hosts, run the chosen parts, tear down. Returns an exit code."""
    from aiotcp.demo.handshake import run_handshake_demo
    from aiotcp.demo.streams import run_streams_demo
    from aiotcp.io.privileges import has_effective_root
    from aiotcp.testing.netns import two_hosts

    if not has_effective_root():
        # Not the library's setcap hint: capabilities on the interpreter cannot
        # let it create namespaces and veth pairs and enter them.
        say(
            "The demo creates two network namespaces joined by a veth pair, which "
            "needs root: run it as root (sudo .venv/bin/python -m aiotcp demo)."
        )
        return 2
    code = 0
    family = "ipv6" if ipv6 else "ipv4"
    with two_hosts("demo", ipv6=ipv6) as (a, b):
        if part in ("all", "handshake"):
            say("=== Part 1: one connection, segment by segment (aiotcp's raw socket layer) ===")
            code |= run_handshake_demo(a, b, say, guard_kind=guard_kind, family=family)
        if part in ("all", "streams"):
            if part == "all":
                say("")
            say("=== Part 2: HTTP over aiotcp's streams API, state by state ===")
            code |= run_streams_demo(a, b, say, family=family)
    return code
