"""Several aiotcp processes listening on one port with ``reuse_port=True`` split its
flows as the kernel's SO_REUSEPORT listeners do (docs/reuseport.md)."""

from __future__ import annotations

import contextlib
import errno
import json
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import aiotcp
from aiotcp.io import iptables_guard
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, read_line

PORT = 8080
MODULE = "aiotcp.testing.echo_workers"


@dataclass
class Worker:
    host: Host
    proc: subprocess.Popen[str]
    pid: int

    def report(self) -> dict[str, Any]:
        """What it served so far (SIGUSR1: it prints a JSON line)."""
        self.proc.send_signal(signal.SIGUSR1)
        return json.loads(read_line(self.proc.stdout, 10))  # type: ignore[no-any-return]

    def kill(self) -> None:
        self.host.stop(self.proc, signal.SIGKILL)


def start_worker(host: Host, loop: LoopKind = "asyncio", stack: str = "aiotcp") -> Worker:
    proc = host.python(
        ["-m", MODULE, "worker", "--port", str(PORT), "--loop", loop, "--stack", stack],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = read_line(proc.stdout, 20).split()
    assert line[0] == "ready", line
    return Worker(host, proc, int(line[1]))


def run_clients(host: Host, address: str, count: int, seed: int) -> dict[str, Any]:
    """``count`` kernel clients from ``host``, 50 at a time, every byte checked."""
    args = ["-m", MODULE, "clients", "--address", address, "--port", str(PORT)]
    args += ["--count", str(count), "--concurrency", "50", "--seed", str(seed)]
    out = host.run([sys.executable, *args], timeout=120).stdout
    return json.loads(out.splitlines()[-1])  # type: ignore[no-any-return]


@contextlib.contextmanager
def workers(host: Host, n: int, loop: LoopKind = "asyncio") -> Iterator[list[Worker]]:
    started = [start_worker(host, loop) for _ in range(n)]
    try:
        yield started
    finally:
        for w in started:
            host.stop(w.proc)


def served(worker: Worker) -> int:
    return int(worker.report()["served"])


def test_two_workers_serve_a_thousand_clients_between_them(
    hosts: tuple[Host, Host], loop_kind: LoopKind
) -> None:
    """Every connection is answered by exactly one worker, each worker answers
    some, and every byte comes back."""
    a, b = hosts
    with workers(a, 2, loop_kind) as (w0, w1):
        result = run_clients(b, a.address, 1000, seed=1)
        assert result["ok"] == 1000, result
        counts = [served(w0), served(w1)]
        assert sum(counts) == 1000 and min(counts) > 200, counts
        groups = [w0.report()["group"], w1.report()["group"]]
        assert sorted(g["slot"] for g in groups) == [0, 1]
        assert all(g["members"] == [0, 1] for g in groups)


def test_ipv6_flows_are_split_too(hosts6: tuple[Host, Host]) -> None:
    a, b = hosts6
    assert a.address6 is not None
    with workers(a, 2) as (w0, w1):
        result = run_clients(b, a.address6, 300, seed=2)
        assert result["ok"] == 300, result
        counts = [served(w0), served(w1)]
        assert sum(counts) == 300 and min(counts) > 50, counts


def test_a_killed_workers_share_goes_to_the_survivor(hosts: tuple[Host, Host]) -> None:
    """SIGKILL: the kernel closes the dead worker's group socket, the survivor
    takes every bucket, and new connections all succeed on it.  Removing the dead
    worker's firewall chain leaves the survivor's working."""
    a, b = hosts
    with workers(a, 2) as (w0, w1):
        assert run_clients(b, a.address, 100, seed=3)["ok"] == 100
        before = served(w1)
        w0.kill()
        group = w1.report()["group"]
        assert group["members"] == [group["slot"]] and group["syn"] == [[0, 255]]
        result = run_clients(b, a.address, 300, seed=4)
        assert result["ok"] == 300, result
        assert served(w1) - before == 300
        chains = a.call(iptables_guard.status)
        assert {c.pid for c in chains if not c.alive} == {w0.pid}
        a.run([sys.executable, "-m", "aiotcp", "guard", "cleanup"])
        assert [c.pid for c in a.call(iptables_guard.status)] == [w1.pid]
        assert run_clients(b, a.address, 100, seed=5)["ok"] == 100


def test_connections_outlive_a_new_worker_taking_part_of_the_share(
    hosts: tuple[Host, Host],
) -> None:
    """A worker that joins takes half of the buckets for new flows; the first
    worker's connections in those buckets stay its own (and the newcomer sends
    them no RST), as established connections stay on their socket in the kernel."""
    a, b = hosts
    args = ["-m", MODULE, "hold", "--address", a.address, "--port", str(PORT), "--count", "60"]
    with workers(a, 1) as (first,):
        holder = b.python(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert read_line(holder.stdout, 20).strip() == "connected"
        second = start_worker(a)
        try:
            time.sleep(0.2)
            assert first.report()["group"]["keep"], "the newcomer took none of its buckets"
            assert holder.stdin is not None
            holder.stdin.write("go\n")
            holder.stdin.flush()
            result = json.loads(read_line(holder.stdout, 30))
            assert result == {"ok": 120, "first_failures": []}, result
            assert second.report()["rst_withheld"] > 0
            assert run_clients(b, a.address, 200, seed=6)["ok"] == 200
            assert served(second) > 0
        finally:
            a.stop(second.proc)
            b.stop(holder)


def test_a_listener_without_reuse_port_gets_eaddrinuse(hosts: tuple[Host, Host]) -> None:
    """As with the kernel: a port held with SO_REUSEPORT is shared only with
    listeners that ask for it too."""
    a, _ = hosts

    async def listen(reuse_port: bool) -> None:
        server = await aiotcp.start_server(
            lambda r, w: None, "0.0.0.0", PORT, reuse_port=reuse_port
        )
        server.close()

    with workers(a, 1), a.entered():
        with pytest.raises(OSError) as info:
            run(lambda: listen(False))
        assert info.value.errno == errno.EADDRINUSE
        with socket.socket() as kernel, pytest.raises(OSError) as info:
            kernel.bind(("0.0.0.0", PORT))
        assert info.value.errno == errno.EADDRINUSE
        run(lambda: listen(True))  # with it, the port is shared


def test_kernel_workers_for_comparison(hosts: tuple[Host, Host]) -> None:
    """The worker program over the kernel (the bench's baseline) splits as well."""
    a, b = hosts
    started = [start_worker(a, stack="kernel") for _ in range(2)]
    try:
        assert run_clients(b, a.address, 200, seed=7)["ok"] == 200
        assert all(served(w) > 0 for w in started)
    finally:
        for w in started:
            a.stop(w.proc)


_PID_SERVER = """
import asyncio, os, sys

async def handle(reader, writer):
    await reader.read(1)
    writer.write(str(os.getpid()).encode())
    writer.close()

async def main():
    server = await asyncio.start_server(handle, "0.0.0.0", 8080, reuse_port=True)
    print("listening", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def test_run_workers_forks_processes_that_share_the_port(
    hosts: tuple[Host, Host], tmp_path: pathlib.Path
) -> None:
    """``python -m aiotcp run --workers 2``: the program, unchanged, twice; SIGTERM to
    the parent ends both and leaves no rule behind."""
    a, b = hosts
    script = tmp_path / "pid_server.py"
    script.write_text(_PID_SERVER)
    args = ["-m", "aiotcp", "run", "--workers", "2", str(script)]
    parent = a.python(args, stdout=subprocess.PIPE, text=True)
    for _ in range(2):
        assert read_line(parent.stdout, 20).strip() == "listening"

    def pid_of_server() -> str:
        with socket.create_connection((a.address, PORT), timeout=5) as s:
            s.sendall(b"?")
            return s.recv(100).decode()

    pids = {b.call(pid_of_server) for _ in range(40)}
    assert len(pids) == 2 and str(parent.pid) not in pids
    a.stop(parent)
    assert parent.returncode is not None
    assert a.call(iptables_guard.status) == []


def test_serve_workers(hosts: tuple[Host, Host]) -> None:
    """``aiotcp.serve_workers(main, 2)``: a coroutine function in two processes."""
    a, b = hosts
    code = _PID_SERVER.replace(
        "asyncio.run(main())", "import aiotcp; aiotcp.serve_workers(main, 2)"
    )
    parent = a.python(["-c", code], stdout=subprocess.PIPE, text=True)
    for _ in range(2):
        assert read_line(parent.stdout, 20).strip() == "listening"
    seen: set[str] = set()
    for _ in range(40):
        with b.entered(), socket.create_connection((a.address, PORT), timeout=5) as s:
            s.sendall(b"?")
            seen.add(s.recv(100).decode())
    assert len(seen) == 2
    a.stop(parent)
    assert a.call(iptables_guard.status) == []
