"""Tens of thousands of idle connections to one aiotcp server, and nothing left after.

Issue 26's scale check: kernel clients in host B (several processes, each from an address of its
own, so neither file descriptors nor ports run out) open ``IDLE_CONNECTIONS``
connections to one
aiotcp server in host A and leave them idle.  The server reports what they cost
it (RSS and Python heap per connection), closes them first (so the TIME-WAITs
are its own, parked), and after 2·MSL nothing of them may be left: no
connection, no timer, no port but the listener's, no TIME-WAIT entry.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import time

import aiotcp
from aiotcp.testing.loops import run
from aiotcp.testing.netns import Host, subnet_address, two_hosts

PORT = 8026
IDLE_CONNECTIONS = int(os.environ.get("AIOTCP_IDLE_CONNECTIONS", "50000"))
CLIENT_PROCESSES = 4  # each with its own address (~28,000 ephemeral ports), and
# at most a quarter of the connections: a process's descriptors may be capped (20,000
# here, without the privilege to raise it).  aiotcp's server needs none per connection.
MSL = 0.5

# Non-blocking connects, 64 in flight per client: the kernel's SYN-ACK wait is the
# server's handshake time.  Bursts stay small, because the namespaces share each
# CPU's receive backlog with the tests running beside this one.
CLIENT = textwrap.dedent(
    """
    import resource, selectors, socket, sys, time
    server, port, n, addr = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < n + 100:
        sys.exit(f"{n} sockets need more than the descriptor limit {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.EpollSelector()
    socks, started, done, deadline = [], 0, 0, time.monotonic() + 300
    while done < n:
        while started - done < 64 and started < n:
            s = socket.socket()
            s.setblocking(False)
            s.bind((addr, 0))
            s.connect_ex((server, port))
            sel.register(s, selectors.EVENT_WRITE)
            socks.append(s)
            started += 1
        for key, _ in sel.select(timeout=5):
            sel.unregister(key.fileobj)
            err = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                sys.exit(f"connect failed: errno {err}")
            done += 1
        if time.monotonic() > deadline:
            sys.exit(f"only {done} of {n} connected in time")
    print("open", done, flush=True)
    sys.stdin.readline()
    for s in socks:
        s.close()
    print("closed", flush=True)
    sys.stdin.readline()
    """
)


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _live_timers(loop: asyncio.AbstractEventLoop) -> int:
    return sum(not h.cancelled() for h in loop._scheduled)  # type: ignore[attr-defined]


async def _line(client: subprocess.Popen[str]) -> str:
    assert client.stdout is not None
    return await asyncio.get_running_loop().run_in_executor(None, client.stdout.readline)


def _tell(client: subprocess.Popen[str], what: str) -> None:
    assert client.stdin is not None
    client.stdin.write(what + "\n")
    client.stdin.flush()


def _client_addresses(b: Host) -> list[str]:
    addrs = [subnet_address(0, 10 + i) for i in range(CLIENT_PROCESSES)]
    for addr in addrs:
        b.run(["ip", "addr", "add", f"{addr}/24", "dev", b.ifname])
    return addrs


def test_idle_connections_cost_and_leave_nothing_behind() -> None:
    n = IDLE_CONNECTIONS
    with two_hosts("idle") as (a, b):
        addrs = _client_addresses(b)

        async def main() -> None:
            loop = asyncio.get_running_loop()
            stack = aiotcp.stack.get_stack()
            writers: list[asyncio.StreamWriter] = []
            all_in = asyncio.Event()

            def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writers.append(writer)
                if len(writers) % 2:  # half of them cache an address, half keep none
                    assert writer.get_extra_info("peername")[0] in addrs
                if len(writers) == n:
                    all_in.set()

            server = await aiotcp.start_server(accepted, port=PORT, backlog=4096, msl=MSL)
            timers_before = _live_timers(loop)
            gc.collect()
            rss_before = _rss()
            shares = [n // len(addrs) + (i < n % len(addrs)) for i in range(len(addrs))]
            clients = [
                b.python(
                    ["-c", CLIENT, a.address, str(PORT), str(share), addr],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for share, addr in zip(shares, addrs, strict=True)
            ]
            t0 = time.monotonic()
            for client, share in zip(clients, shares, strict=True):
                line = await _line(client)
                assert line.split() == ["open", str(share)], line
            await asyncio.wait_for(all_in.wait(), timeout=60)
            opened = time.monotonic() - t0
            await asyncio.sleep(0.5)
            gc.collect()
            per_connection = (_rss() - rss_before) / n
            states = {c.conn.state.name for c in stack.connections.values()}
            assert len(stack.connections) == n and states == {"ESTABLISHED"}

            for i, writer in enumerate(writers):  # the server closes first: its TIME-WAITs
                writer.close()
                if i % 500 == 499:
                    await asyncio.sleep(0.01)  # FINs in bursts of 500, not 50,000
            for client in clients:
                _tell(client, "close")
            for client in clients:
                line = await _line(client)
                assert line.strip() == "closed", line
            deadline = loop.time() + 2 * MSL + 30
            while stack.connections and loop.time() < deadline:
                await asyncio.sleep(0.2)
            left = {d.conn.state.name for d in stack.connections.values()}
            assert not stack.connections, f"{len(stack.connections)} left: {left}"
            assert len(stack.time_wait) == 0
            assert stack.guard.reservations.ports() == [PORT]
            assert _live_timers(loop) <= timers_before
            assert aiotcp.driver._EMPTY_INBOX == []  # shared by every empty inbox
            assert aiotcp.transport._NO_EXTRA == {}  # shared until a transport caches
            del writers[:]
            gc.collect()
            print(
                f"\n{n} idle connections: {opened:.1f} s to open, "
                f"{per_connection:.0f} bytes of RSS each; "
                f"RSS {rss_before / 1e6:.1f} MB before, {_rss() / 1e6:.1f} MB after they left",
                file=sys.stderr,
            )
            for client in clients:
                _tell(client, "exit")
            server.close()

        with a.entered():
            run(main, "asyncio", timeout=240)
