"""The drop-in loop: ``aiotcp.run`` and ``python -m aiotcp run`` put unchanged asyncio
programs on aiotcp, against the kernel's TCP in another namespace.

Each test checks that the traffic went over aiotcp (the transport's class, or the
absence of a kernel socket), and that the program cannot tell otherwise: exit
codes, exceptions, signals and cleanup are what plain ``python`` gives.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohappyeyeballs
import pytest

import aiotcp
from aiotcp.handoff import HandedOffConnection
from aiotcp.testing.loops import LoopKind, loop_factory
from aiotcp.testing.netns import (
    Host,
    kernel_echo_server,
    kernel_sink,
    kernel_source,
    pattern,
    read_line,
)
from aiotcp.transport import TcpTransport

PORT = 8123

# A program that knows nothing of aiotcp: it reports which transport it got.
ECHO_CLIENT = """
import asyncio, sys

async def main(host, port):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"ping\\n")
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    print(type(writer.transport).__name__, line.decode().strip(), flush=True)
"""


NOT_OURS = {"ipv4": "198.18.9.9", "ipv6": "fd00:198:18:9::9"}
"""An address of the tests' ranges that no host has."""
LOOPBACK = {"ipv4": "127.0.0.1", "ipv6": "::1"}
WILDCARD = {"ipv4": "0.0.0.0", "ipv6": "::"}


def sockaddr(host: str, port: int) -> tuple[Any, ...]:
    """``getpeername``'s shape for ``host``: a 4-tuple for IPv6, as asyncio's."""
    return (host, port, 0, 0) if ":" in host else (host, port)


def write_program(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path


def aiotcp_run(host: Host, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = host.run(
        [sys.executable, "-m", "aiotcp", "run", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    return result


def no_aiotcp_rules(host: Host) -> bool:
    """Neither family's table has any of the guard's rules left."""
    out = "".join(
        host.run([tool, "-S"], capture_output=True, text=True).stdout
        for tool in ("iptables", "ip6tables")
    )
    return "aiotcp" not in out.lower()


@pytest.mark.parametrize(
    "entry",
    [
        "asyncio.run(main(sys.argv[1], int(sys.argv[2])))",
        # A program that makes and drives its own loop.
        "loop = asyncio.new_event_loop()\n"
        "loop.run_until_complete(main(sys.argv[1], int(sys.argv[2])))\n"
        "loop.close()",
        # A program that picks uvloop itself.
        "import uvloop\nuvloop.run(main(sys.argv[1], int(sys.argv[2])))",
        "import uvloop\nuvloop.install()\nasyncio.run(main(sys.argv[1], int(sys.argv[2])))",
    ],
    ids=["asyncio.run", "new_event_loop", "uvloop.run", "uvloop.install"],
)
def test_run_puts_an_unchanged_programs_connections_on_aiotcp(
    family_hosts: tuple[Host, Host], family: str, tmp_path: Path, entry: str
) -> None:
    a, b = family_hosts
    program = write_program(tmp_path / "client.py", ECHO_CLIENT + entry + "\n")
    with kernel_echo_server(b, PORT):
        result = aiotcp_run(a, str(program), b.address_of(family), str(PORT))
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["TcpTransport", "ping"]
        # The same program under plain python gets a kernel transport (the check can fail).
        plain = a.run([sys.executable, str(program), b.address_of(family), str(PORT)],
                      capture_output=True, text=True, timeout=30)  # fmt: skip
        assert plain.stdout.split()[0] != "TcpTransport"
    assert no_aiotcp_rules(a)


@pytest.mark.parametrize("guard", ["iptables", "socket"])
def test_run_options_reach_the_programs_stack(
    family_hosts: tuple[Host, Host], family: str, tmp_path: Path, guard: str
) -> None:
    """``--guard`` (and the stack's other options) configure the stack that the
    program's own loop creates at its first connection."""
    a, b = family_hosts
    program = write_program(
        tmp_path / "client.py",
        ECHO_CLIENT
        + """
async def report(host, port):
    await main(host, port)
    import aiotcp
    print(type(aiotcp.get_stack().guard).__name__, flush=True)

asyncio.run(report(sys.argv[1], int(sys.argv[2])))
""",
    )
    with kernel_echo_server(b, PORT):
        result = aiotcp_run(a, "--guard", guard, str(program), b.address_of(family), str(PORT))
    assert result.returncode == 0, result.stderr
    expected = {"iptables": "IptablesGuard", "socket": "SocketFilterGuard"}[guard]
    assert result.stdout.split() == ["TcpTransport", "ping", expected]
    assert no_aiotcp_rules(a)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_run_m_module_passes_arguments_and_exit_status(
    family_hosts: tuple[Host, Host], family: str, tmp_path: Path, loop: str
) -> None:
    """``-m module args``: ``sys.argv`` as ``python -m`` sets it, and the program's
    own exit status comes back unchanged."""
    a, b = family_hosts
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    write_program(
        package / "client.py",
        ECHO_CLIENT
        + """
if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
    print(sys.argv[3:], flush=True)
    sys.exit(7)
""",
    )
    with kernel_echo_server(b, PORT):
        result = a.run(
            [sys.executable, "-m", "aiotcp", "run", "--loop", loop, "-m", "pkg.client",
             b.address_of(family), str(PORT), "--flag", "x"],
            capture_output=True, text=True, cwd=tmp_path, timeout=30, check=False,
        )  # fmt: skip
    assert result.returncode == 7, result.stderr
    assert result.stdout.splitlines() == ["TcpTransport ping", "['--flag', 'x']"]


def test_run_reports_errors_and_interrupts_as_python_does(
    family_hosts: tuple[Host, Host], family: str, tmp_path: Path
) -> None:
    """An uncaught exception: its traceback and status 1.  Ctrl-C of a serving
    program: asyncio.run's KeyboardInterrupt, the status python gives, and no
    firewall rule left behind."""
    a, b = family_hosts
    failing = write_program(
        tmp_path / "failing.py",
        """
        import asyncio
        async def main():
            server = await asyncio.start_server(lambda r, w: None, "0.0.0.0", 0)
            raise ValueError("the program's own error")
        asyncio.run(main())
        """,
    )
    result = aiotcp_run(a, str(failing))
    assert result.returncode == 1
    assert result.stderr.rstrip().endswith("ValueError: the program's own error")
    assert no_aiotcp_rules(a)

    server = write_program(
        tmp_path / "server.py",
        f"""
        import asyncio
        async def handle(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()
        async def main():
            server = await asyncio.start_server(handle, None, {PORT})
            print(type(server).__module__, flush=True)
            await server.serve_forever()
        asyncio.run(main())
        """,
    )
    statuses = []
    for command in (
        [sys.executable, str(server)],
        [sys.executable, "-m", "aiotcp", "run", str(server)],
    ):
        proc = a.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            module = read_line(proc.stdout, 20).strip()
            with b.connect(a.address_of(family), PORT) as sock:
                sock.sendall(b"hello\n")
                assert sock.recv(100) == b"hello\n"
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "KeyboardInterrupt" in err
        statuses.append((module, proc.returncode))
    assert statuses == [("asyncio.base_events", -signal.SIGINT), ("aiotcp.streams", -signal.SIGINT)]
    assert no_aiotcp_rules(a)


def test_run_without_privileges_says_what_to_do(
    family_hosts: tuple[Host, Host], family: str, tmp_path: Path
) -> None:
    a, _ = family_hosts
    program = write_program(tmp_path / "p.py", "print('ran')\n")
    os.chmod(tmp_path, 0o755)
    result = a.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-m", "aiotcp", "run", str(program)],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    assert result.returncode == 1
    assert "ran" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "CAP_NET_RAW" in lines[0] and "CAP_NET_ADMIN" in lines[0]


def run_in(host: Host, kind: LoopKind, main: Callable[[], Any]) -> Any:
    """``aiotcp.run(main())`` inside ``host``, on the loop ``kind``."""
    with host.entered():
        return aiotcp.run(asyncio.wait_for(main(), 60), loop_factory=loop_factory(kind))


def test_aiotcp_run_and_what_stays_on_the_kernel(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """Connections and servers made through the loop are aiotcp's, over either
    family and on loopback; a caller's own socket (``sock=``) and an IPv6
    link-local destination stay the kernel's, as the docs say."""
    a, b = family_hosts
    a.run(["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=0"])
    loopback = LOOPBACK[family]
    link_local = None
    if family == "ipv6":
        shown = b.run(["ip", "-6", "-o", "addr", "show", "dev", b.ifname, "scope", "link"])
        link_local = shown.stdout.split()[3].split("/")[0] + "%" + a.ifname

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    async def echoes(host: str, port: int, line: bytes, *, sock: Any = None) -> bool:
        """Whether the line came back, and over aiotcp."""
        if sock is not None:
            reader, writer = await asyncio.open_connection(sock=sock)
        else:
            reader, writer = await asyncio.open_connection(host, port)
        writer.write(line)
        assert await reader.readline() == line
        writer.close()
        return isinstance(writer.transport, TcpTransport)

    async def main() -> None:
        assert await echoes(b.address_of(family), PORT, b"over aiotcp\n")

        own = socket.create_connection((b.address_of(family), PORT))
        own.setblocking(False)
        assert not await echoes("", 0, b"kernel\n", sock=own)

        local = await asyncio.start_server(echo, loopback, 0)
        assert isinstance(local, aiotcp.Server)
        assert await echoes(loopback, local.sockets[0].getsockname()[1], b"loopback\n")
        local.close()

        if link_local is not None:
            assert not await echoes(link_local, PORT, b"link-local\n")

        # Refused, as the kernel refuses it.
        with pytest.raises(OSError) as refused:
            await asyncio.open_connection(loopback, 1)
        with pytest.raises(OSError) as kernel:
            socket.create_connection((loopback, 1), timeout=2)
        assert refused.value.errno == kernel.value.errno == errno.ECONNREFUSED

    with kernel_echo_server(b, PORT):
        run_in(a, loop_kind, main)


def test_server_sockets_are_socket_like_and_tune_accepted_connections(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """``Server.sockets[0]`` as aiohttp and websockets use it; options set on it are
    the accepted connections' (as a listening socket's are inherited); unknown
    options fail as the kernel's do."""
    a, b = family_hosts
    accepted: asyncio.Queue[asyncio.StreamWriter] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(writer)
        await reader.read()

    async def main() -> None:
        everywhere = await asyncio.start_server(handle, None, PORT + 1)
        # Both families: asyncio's two sockets (one per family), IPv4 first.
        assert [s.getsockname() for s in everywhere.sockets] == [
            ("0.0.0.0", PORT + 1),
            ("::", PORT + 1, 0, 0),
        ]
        everywhere.close()

        server = await asyncio.start_server(handle, WILDCARD[family], PORT)
        (listening,) = server.sockets
        assert listening.getsockname() == sockaddr(WILDCARD[family], PORT)
        af = socket.AF_INET6 if family == "ipv6" else socket.AF_INET
        assert (listening.family, listening.type) == (af, socket.SOCK_STREAM)
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert listening.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 33)
        listening.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, 0x10)  # inherited too
        with pytest.raises(OSError) as unknown:
            listening.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
        assert unknown.value.errno == errno.ENOPROTOOPT
        with pytest.raises(OSError) as unconnected:
            listening.getpeername()
        assert unconnected.value.errno == errno.ENOTCONN

        client = await asyncio.to_thread(b.connect, a.address_of(family), PORT)
        writer = await asyncio.wait_for(accepted.get(), 10)
        sock = writer.get_extra_info("socket")
        assert sock.getpeername() == client.getsockname()
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 33
        assert sock.getsockopt(socket.IPPROTO_IP, socket.IP_TOS) == 0x10
        client.close()
        if family == "ipv6":  # "::" is IPv6's alone, as asyncio's socket (V6ONLY) on it
            with pytest.raises(ConnectionRefusedError):
                await asyncio.to_thread(b.connect, a.address, PORT, 2.0)
        server.close()

    run_in(a, loop_kind, main)


def test_setsockopt_reaches_the_live_connection(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """What redis-py and aiohttp set on ``get_extra_info('socket')`` takes effect:
    keepalive probes go out on an idle connection (counted by the connection and
    answered by the kernel), TCP_NODELAY and TCP_CONGESTION change the options, and
    the buffer sizes read back doubled, as Linux reports them."""
    a, b = family_hosts

    async def main() -> None:
        reader, writer = await asyncio.open_connection(b.address_of(family), PORT)
        sock = writer.get_extra_info("socket")
        conn = writer.transport._conn  # type: ignore[attr-defined]
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        assert conn.options.nodelay is False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, b"reno")
        name = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16)
        assert name.rstrip(b"\0") == b"reno"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 131072
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 1500)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 1500

        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        assert conn.counters.keepalive_probes == 0
        await asyncio.sleep(2.6)
        assert conn.counters.keepalive_probes >= 2
        writer.write(b"still alive\n")  # the kernel answered every probe
        assert await reader.readline() == b"still alive\n"
        writer.close()

    with kernel_echo_server(b, PORT):
        run_in(a, loop_kind, main)


def test_so_linger(family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind) -> None:
    """SO_LINGER {1, 0}: close() resets the connection (the kernel peer's recv
    raises ECONNRESET).  {1, n}: the close is over (``wait_closed``) once the peer
    has acknowledged everything written, and the peer gets every byte."""
    a, b = family_hosts
    data = pattern(2 * 1024 * 1024, seed=3)

    async def main() -> None:
        peer = await asyncio.to_thread(b.listen, PORT, WILDCARD[family])
        try:
            _, writer = await asyncio.open_connection(b.address_of(family), PORT)
            accepted, _ = await asyncio.to_thread(peer.accept)
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            writer.write(b"dropped")
            writer.close()
            await writer.wait_closed()
            accepted.settimeout(10)
            with pytest.raises(ConnectionResetError):
                while accepted.recv(100):
                    pass
            accepted.close()

            _, writer = await asyncio.open_connection(b.address_of(family), PORT)
            accepted, _ = await asyncio.to_thread(peer.accept)
            conn = writer.transport._conn  # type: ignore[attr-defined]
            writer.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 20)
            )
            reading = asyncio.create_task(asyncio.to_thread(_read_all, accepted))
            writer.write(data)
            writer.close()
            await writer.wait_closed()
            # Over only when everything, the FIN included, was acknowledged.
            assert not conn.flushing
            assert conn.snd_una == conn.snd_max
            assert hashlib.sha256(await reading).digest() == hashlib.sha256(data).digest()
        finally:
            peer.close()

    run_in(a, loop_kind, main)


def _read_all(sock: socket.socket) -> bytes:
    sock.settimeout(20)
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def test_the_loops_methods_reject_what_asyncios_reject(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """Unknown keywords are still TypeErrors, asyncio's argument errors are still
    raised, and a rejected call (also one refused after its port was chosen: a
    refused connect, a bad local address) leaves no port reserved."""
    a, b = family_hosts

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TypeError):
            await loop.create_connection(asyncio.Protocol, b.address_of(family), PORT, no_such=1)  # type: ignore[call-overload]
        with pytest.raises(TypeError):
            await loop.create_server(asyncio.Protocol, port=PORT, no_such=1)  # type: ignore[call-overload]
        with pytest.raises(ValueError):
            await loop.create_connection(
                asyncio.Protocol, b.address_of(family), PORT, server_hostname="x"
            )
        stack = aiotcp.get_stack()
        held = len(stack.guard.reservations)
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(asyncio.Protocol, b.address_of(family), PORT)
        with pytest.raises(OSError):
            await loop.create_connection(
                asyncio.Protocol, b.address_of(family), PORT, local_addr=(NOT_OURS[family], 0)
            )
        assert len(stack.guard.reservations) == held

    with a.entered():
        aiotcp.run(asyncio.wait_for(main(), 30), loop_factory=loop_factory(loop_kind))


def test_sendfile_sends_a_file_without_reading_it_whole(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind, tmp_path: Path
) -> None:
    """``loop.sendfile`` (what aiohttp's FileResponse calls): a whole 24 MB file,
    then a slice of it by offset and count; the file position ends after what was
    sent, as asyncio documents."""
    a, b = family_hosts
    data = pattern(24 * 1024 * 1024, seed=4)
    path = tmp_path / "file.bin"
    path.write_bytes(data)

    async def connect() -> asyncio.StreamWriter:
        _, writer = await asyncio.open_connection(b.address_of(family), PORT)
        # wait_closed() returns when the sink has everything, however slow the machine.
        linger = struct.pack("ii", 1, 50)
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        return writer

    async def main() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        with open(path, "rb") as file:
            writer = await connect()
            whole = await loop.sendfile(writer.transport, file)
            writer.close()
            await writer.wait_closed()
            writer = await connect()
            part = await loop.sendfile(writer.transport, file, 1000, 5_000_000)
            position = file.tell()
            writer.close()
            await writer.wait_closed()
        return whole, part, position

    with kernel_sink(b, PORT) as sink:
        whole, part, position = run_in(a, loop_kind, main)
        assert (whole, part, position) == (len(data), 5_000_000, 1000 + 5_000_000)
        results = sorted([sink.read_result(), sink.read_result()])
    assert results == sorted(
        [
            (len(data), hashlib.sha256(data).hexdigest()),
            (5_000_000, hashlib.sha256(data[1000:5_001_000]).hexdigest()),
        ]
    )


def test_connections_made_before_their_transport_are_handed_over(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """aiohttp's client connects with ``aiohappyeyeballs.start_connection`` and then
    passes the socket as ``create_connection(sock=...)``: on a drop-in loop both
    halves are aiotcp's, the handed-over connection can be tuned before the
    hand-off, and it can be handed over once.  A ``socket_factory`` (the caller
    making its own kernel socket) keeps the kernel's."""
    a, b = family_hosts
    af = socket.AF_INET6 if family == "ipv6" else socket.AF_INET
    infos = [(af, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr(b.address_of(family), PORT))]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        sock = await aiohappyeyeballs.start_connection(infos)
        assert isinstance(sock, HandedOffConnection)
        assert sock.getpeername() == sockaddr(b.address_of(family), PORT)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        reader = asyncio.StreamReader()
        transport, _ = await loop.create_connection(
            lambda: asyncio.StreamReaderProtocol(reader), sock=sock
        )
        assert isinstance(transport, TcpTransport)
        assert transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        transport.write(b"handed over\n")
        assert await reader.readline() == b"handed over\n"
        with pytest.raises(OSError) as twice:
            await loop.create_connection(asyncio.Protocol, sock=sock)
        assert twice.value.errno == errno.EBADF
        transport.close()

        def kernel_socket(info: Any) -> socket.socket:
            return socket.socket(info[0], info[1], info[2])

        own = await aiohappyeyeballs.start_connection(infos, socket_factory=kernel_socket)
        assert type(own) is socket.socket
        own.close()

    with kernel_echo_server(b, PORT):
        run_in(a, loop_kind, main)


def test_a_connections_descriptor_polls_as_a_kernel_sockets(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """``get_extra_info("socket").fileno()`` polls readable exactly when a kernel
    socket's would for an asyncio program: not while the connection is idle with
    everything read, yes once the peer has closed (how httpcore's pool tells a
    reusable connection from a dead one); -1 after the transport is closed."""
    a, b = family_hosts

    def readable(fd: int) -> bool:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))

    async def main() -> None:
        reader, writer = await asyncio.open_connection(b.address_of(family), PORT)
        sock = writer.get_extra_info("socket")
        fd = sock.fileno()
        assert fd >= 0 and not readable(fd)
        writer.write(b"ping\n")
        assert await reader.readline() == b"ping\n"
        assert not readable(fd)
        writer.write_eof()  # the echo server closes when it reads EOF
        assert await reader.read() == b""
        assert readable(fd)
        writer.close()
        await writer.wait_closed()
        assert sock.fileno() == -1

    with kernel_echo_server(b, PORT):
        run_in(a, loop_kind, main)


@pytest.mark.parametrize(
    ("silent_family", "family"),
    [("ipv4", "ipv4"), ("ipv6", "ipv6"), ("ipv6", "ipv4"), ("ipv4", "ipv6")],
    ids=["v4-v4", "v6-v6", "v6-v4", "v4-v6"],
)
def test_happy_eyeballs_over_every_resolved_address(
    hosts6: tuple[Host, Host], silent_family: str, family: str, loop_kind: LoopKind
) -> None:
    """A name with two addresses, the first silent (nothing answers there), in the
    same family as the second or across families: with ``happy_eyeballs_delay`` the
    second attempt starts after the delay and wins, the silent one is given up;
    names (also ``local_addr``'s) are resolved through ``loop.getaddrinfo``, never
    by a blocking call on the loop."""
    a, b = hosts6
    # On the link, but no host there: its SYNs (or neighbour solicitations) go unanswered.
    silent = {"ipv4": "198.18.0.77", "ipv6": "fd00:198:18::77"}[silent_family]
    names = {
        "service.test": [silent, b.address_of(family)],
        "me.test": [a.address, a.address_of("ipv6")],  # one local address per family
    }
    asked: list[str] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        real = loop.getaddrinfo

        async def getaddrinfo(host: Any, port: Any, **kw: Any) -> list[Any]:
            if host not in names:
                return await real(host, port, **kw)
            asked.append(host)
            return [
                (
                    socket.AF_INET6 if ":" in ip else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    sockaddr(ip, int(port or 0)),
                )
                for ip in names[host]
            ]

        loop.getaddrinfo = getaddrinfo  # type: ignore[method-assign]
        started = loop.time()
        reader, writer = await asyncio.open_connection(
            "service.test", PORT, happy_eyeballs_delay=0.3, local_addr=("me.test", 0)
        )
        took = loop.time() - started
        assert writer.get_extra_info("peername") == sockaddr(b.address_of(family), PORT)
        assert writer.get_extra_info("sockname")[0] == a.address_of(family)
        writer.write(b"hi\n")
        assert await reader.readline() == b"hi\n"
        writer.close()
        # The silent attempt was abandoned: no connection to it is left.
        assert not [row for row in aiotcp.connections() if row["remote"][0] == silent]
        return took

    with kernel_echo_server(b, PORT):
        took = run_in(a, loop_kind, main)
    assert 0.3 <= took < 3.0
    assert asked == ["service.test", "me.test"]


def test_a_kernel_source_reaches_an_aiotcp_run_client_whole(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """Bulk receive through asyncio's own StreamReader (the drop-in does not swap
    it): 16 MB byte-exact."""
    a, b = family_hosts
    size = 16 * 1024 * 1024

    async def main() -> bytes:
        reader, writer = await asyncio.open_connection(b.address_of(family), PORT)
        assert isinstance(writer.transport, TcpTransport)
        data = await reader.read(-1)
        writer.close()
        return data

    with kernel_source(b, PORT, size):
        data = run_in(a, loop_kind, main)
    assert hashlib.sha256(data).digest() == hashlib.sha256(pattern(size, seed=0)).digest()
