"""``python -m aiotcp ss`` reads a running stack's table through its control socket."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap

from aiotcp.control import CONTROL_DIR
from aiotcp.testing.netns import Host, kernel_echo_server, read_line

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


def test_ss_lists_a_running_stack_from_another_process(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    with kernel_echo_server(b, 7000):
        holder = a.python(["-c", HOLDER, b.address], stdout=subprocess.PIPE, text=True)
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
        assert "0.0.0.0:8080" in listen and "syn_queue:0" in listen
        est = next(ln for ln in lines if ln.startswith("ESTABLISHED"))
        assert f"{b.address}:7000" in est and "rtt:" in est and "cwnd:" in est
        rows = json.loads(
            subprocess.run(
                [*cli, "--json", "--state", "established"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        assert [r["state"] for r in rows] == ["ESTABLISHED"]
        assert rows[0]["remote"] == [b.address, 7000]
        holder.terminate()
        holder.wait(10)
    assert not sock.exists()
