"""The stream-level demo: a real HTTP exchange over aiotcp, state by state.

Host A runs an aiotcp HTTP server.  From host B, first the kernel's TCP (curl)
fetches a page, then aiotcp's own client does.  Every state transition of every
aiotcp connection is printed as it happens, so the three-way handshake
(LISTEN → SYN-RECEIVED → ESTABLISHED), the close (FIN-WAIT-1, FIN-WAIT-2 or
CLOSE-WAIT → LAST-ACK) and TIME-WAIT are visible on both ends.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Callable

from aiotcp.demo.http_side import PAGE
from aiotcp.testing.netns import Host, read_line

SERVER_PORT = 8080
SIDE = ["-m", "aiotcp.demo.http_side"]


def run_streams_demo(
    a: Host, b: Host, say: Callable[[str], None] = print, *, family: str = "ipv4"
) -> int:
    """Server on A, curl then an aiotcp client on B; returns an exit code."""
    t0 = time.time()
    server_address = a.address_of(family)
    url_host = f"[{server_address}]" if family == "ipv6" else server_address
    say(f"Host A {server_address}: aiotcp HTTP server on port {SERVER_PORT} (MSL 1 s for the demo)")
    say(f"Host B {b.address_of(family)}: curl (the kernel's TCP), then an aiotcp client")
    server = a.python(
        [*SIDE, "server", str(SERVER_PORT), "8", str(t0)],
        stdout=subprocess.PIPE,
        text=True,
    )
    if read_line(server.stdout, 20).strip() != "ready":
        say("FAILED: the server did not start")
        return 1
    curl = b.run(["curl", "-sS", "--max-time", "10", f"http://{url_host}:{SERVER_PORT}/"])
    time.sleep(0.3)
    t_client = time.time() - t0
    client = b.run(
        [sys.executable, *SIDE, "client", server_address, str(SERVER_PORT), str(t0)],
        timeout=30,
    )
    server.terminate()
    server_out, _ = server.communicate(timeout=20)
    lines = sorted(
        (ln for ln in (server_out + client.stdout).splitlines() if ln.startswith("[")),
        key=lambda ln: float(ln[1:].split("s]")[0]),
    )
    say("")
    say("curl (kernel TCP) fetches the page:")
    for line in lines:
        if float(line[1:].split("s]")[0]) < t_client:
            say(line)
    say(f"curl got: {curl.stdout.strip()!r}")
    say("")
    say("aiotcp client fetches the page (server and client both aiotcp):")
    for line in lines:
        if float(line[1:].split("s]")[0]) >= t_client:
            say(line)
    say("".join(ln for ln in client.stdout.splitlines(True) if ln.startswith("client got")).strip())
    expected = hashlib.sha256(PAGE).hexdigest()[:16]
    ok = curl.stdout.encode() == PAGE and f"body sha256 {expected}" in client.stdout
    say("")
    say(f"Both fetches verified: {ok}")
    return 0 if ok else 1
