"""``python -m aiotcp ss`` reads a running stack's table through its control socket."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import stat
import subprocess
import sys
import textwrap
from typing import Any

import pytest

import aiotcp
from aiotcp import sstable
from aiotcp.control import CONTROL_DIR
from aiotcp.core.connection import Connection
from aiotcp.stack import TABLE_CHUNK
from aiotcp.testing.loops import run
from aiotcp.testing.netns import Host, idle_kernel_clients, kernel_echo_server, read_line

HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    import aiotcp

    async def main():
        async with aiotcp.Stack(control=True, msl=30):
            server = await aiotcp.start_server(lambda r, w: None, port=8080)
            reader, writer = await aiotcp.open_connection(sys.argv[1], 7000)
            writer.write(b"x\\n")
            await reader.readline()
            print("ready", flush=True)
            await asyncio.sleep(30)

    asyncio.run(main())
    """
)


def test_ss_lists_a_running_stack_from_another_process(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    peer = b.address_of(family)
    with kernel_echo_server(b, 7000):
        holder = a.python(["-c", HOLDER, peer], stdout=subprocess.PIPE, text=True)
        assert read_line(holder.stdout, 20).strip() == "ready"
        sock = CONTROL_DIR / f"{holder.pid}.sock"
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600  # owner only
        # From the host's shell: unix sockets cross network namespaces.
        cli = [sys.executable, "-m", "aiotcp", "ss", "--pid", str(holder.pid)]
        table = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
        lines = table.splitlines()
        assert lines[0] == f"pid {holder.pid}"
        assert lines[1].split()[:3] == ["State", "Recv-Q", "Send-Q"]
        listen = next(ln for ln in lines if ln.startswith("LISTEN"))
        # A listener with no host takes both families: ss's "*" for such a socket.
        assert "*:8080" in listen and "*:*" in listen and "syn_queue:0" in listen
        est = next(ln for ln in lines if ln.startswith("ESTABLISHED"))
        shown = peer if family == "ipv4" else f"[{peer}]"  # ss's brackets
        assert f"{shown}:7000" in est and "rtt:" in est and "cwnd:" in est
        rows = json.loads(
            subprocess.run(
                [*cli, "--json", "--state", "established"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert [r["state"] for r in rows] == ["ESTABLISHED"]
        assert rows[0]["remote"] == [peer, 7000]
        holder.terminate()
        holder.wait(10)
    assert not sock.exists()


MANY = 2000  # ten chunks


def test_the_table_of_thousands_of_connections_is_built_a_chunk_per_loop_pass(
    family_hosts: tuple[Host, Host], family: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With thousands of connections, ``ss`` and ``aiotcp.connections()`` must not
    freeze the program they watch: filters run before any row is built (a query
    that matches nothing builds none), and the control socket builds and sends the
    table at most ``TABLE_CHUNK`` rows per pass of the event loop, so the served
    program runs in between.  Rows are counted, not timed; the time each pass
    took is printed for the record (``bench/ss_cost.py`` measures it)."""
    a, b = family_hosts
    built = [0]
    real_row = sstable.connection_row

    def counted_row(conn: Connection, now: float) -> dict[str, Any]:
        built[0] += 1
        return real_row(conn, now)

    monkeypatch.setattr(sstable, "connection_row", counted_row)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with await aiotcp.start_server(lambda r, w: None, port=8080, backlog=4096):
            clients = idle_kernel_clients(b, a.address_of(family), 8080, MANY)
            assert (await asyncio.to_thread(read_line, clients.stdout, 60)).strip() == "ready"
            while len(aiotcp.connections(state="established")) < MANY:
                await asyncio.sleep(0.05)

            built[0] = 0
            assert aiotcp.connections(port=1) == []
            assert built[0] == 0  # filtered before formatting

            passes: list[tuple[int, float]] = []  # rows built so far, at each loop pass
            ticking = True

            async def ticker() -> None:
                while ticking:
                    passes.append((built[0], loop.time()))
                    await asyncio.sleep(0)

            tick = asyncio.create_task(ticker())
            cli = [sys.executable, "-m", "aiotcp", "ss", "--pid", str(os.getpid())]
            built[0] = 0
            ss = await asyncio.create_subprocess_exec(*cli, "--json", stdout=subprocess.PIPE)
            rows = json.loads((await ss.communicate())[0])
            assert len(rows) == MANY + 1  # and the listener
            assert built[0] == MANY
            nothing = await asyncio.create_subprocess_exec(
                *cli, "--port", "1", "--json", stdout=subprocess.PIPE
            )
            assert json.loads((await nothing.communicate())[0]) == []
            ticking = False
            await tick
            assert built[0] == MANY  # the second query built no row
            per_pass = [n2 - n1 for (n1, _), (n2, _) in itertools.pairwise(passes)]
            assert max(per_pass) <= TABLE_CHUNK
            stall = max(t2 - t1 for (_, t1), (_, t2) in itertools.pairwise(passes))
            print(f"{MANY} connections: longest loop pass during ss {stall * 1000:.1f} ms")
            b.stop(clients)

    with a.entered():
        run(main, "asyncio", timeout=120, control=True)
