"""ICMP errors from a real router reach aiotcp's connections as they reach the
kernel's sockets (RFC 9293 §3.9.2.2, RFC 5927, RFC 1191).

Topology: A (aiotcp, and the kernel for comparison) – R (a Linux router) – B (a
kernel server).  R produces the errors the way routers do: no route, an
``unreachable`` or ``prohibit`` route, a REJECT rule, a narrower next link.  Each
errno is checked against what the kernel's own ``connect`` reports from A in
the same topology, so the test follows Linux rather than our reading of it.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP

import aiotcp
from aiotcp.sstable import format_rows
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import (
    Host,
    Routed,
    kernel_echo_server,
    kernel_sink,
    pattern,
    require_root,
    routed_hosts,
    sysctl,
)

pytestmark = pytest.mark.root

PORT = 7100


@pytest.fixture
def routed() -> Iterator[Routed]:
    require_root()
    with routed_hosts() as topo:
        sysctl(topo.r, "net.ipv4.icmp_ratelimit", "0")  # an error for every probe
        yield topo


def kernel_connect(host: Host, addr: str, port: int) -> tuple[int | None, float]:
    """The kernel's ``connect`` from ``host``: its errno (None if it connected) and
    how long it took."""

    def attempt() -> tuple[int | None, float]:
        start = time.monotonic()
        try:
            socket.create_connection((addr, port), timeout=10).close()
        except OSError as exc:
            return exc.errno, time.monotonic() - start
        return None, time.monotonic() - start

    return host.call(attempt)


def aiotcp_connect(
    host: Host, addr: str, port: int, loop_kind: LoopKind
) -> tuple[int | None, float]:
    async def attempt() -> tuple[int | None, float]:
        start = time.monotonic()
        try:
            _, writer = await asyncio.wait_for(aiotcp.open_connection(addr, port), 10)
        except OSError as exc:
            return exc.errno, time.monotonic() - start
        writer.close()
        return None, time.monotonic() - start

    with host.entered():
        return run(attempt, loop_kind)


# what R does to make the path fail, and the address A connects to
FAILURES: dict[str, tuple[list[list[str]], str]] = {
    "no-route": ([], "198.18.200.1"),  # R has no route: network unreachable
    "unreachable-route": (
        [["ip", "route", "add", "unreachable", "198.18.201.0/24"]],
        "198.18.201.1",
    ),
    "prohibit-route": ([["ip", "route", "add", "prohibit", "198.18.202.0/24"]], "198.18.202.1"),
    "reject-rule": (
        [
            [
                "iptables",
                "-A",
                "FORWARD",
                "-p",
                "tcp",
                "--dport",
                str(PORT),
                "-j",
                "REJECT",
                "--reject-with",
                "icmp-port-unreachable",
            ],
        ],
        "198.18.1.2",
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_connect_fails_at_once_with_the_kernels_errno(
    routed: Routed, loop_kind: LoopKind, failure: str
) -> None:
    """Without ICMP a connect waits out every SYN retry (over a minute); with it,
    both stacks fail within the round trip and agree on the errno."""
    commands, addr = FAILURES[failure]
    for cmd in commands:
        routed.r.run(cmd)
    kernel_errno, _ = kernel_connect(routed.a, addr, PORT)
    assert kernel_errno is not None
    got, elapsed = aiotcp_connect(routed.a, addr, PORT, loop_kind)
    assert (errno.errorcode.get(got or 0), elapsed < 1.0) == (
        errno.errorcode[kernel_errno],
        True,
    )
    expected = {
        "no-route": errno.ENETUNREACH,
        "unreachable-route": errno.EHOSTUNREACH,
        "prohibit-route": errno.EHOSTUNREACH,
        "reject-rule": errno.ECONNREFUSED,
    }
    assert got == expected[failure]


def test_errors_on_an_open_connection_are_soft_then_reported_on_timeout(
    routed: Routed, loop_kind: LoopKind
) -> None:
    """Once established, an unreachable is only remembered (RFC 1122 §4.2.3.9); when
    the connection then gives up, the user hears EHOSTUNREACH rather than ETIMEDOUT,
    as from the kernel (``sk_err_soft``)."""
    a, r, b = routed.a, routed.r, routed.b
    block = ["ip", "route", "add", "unreachable", f"{b.address}/32"]
    unblock = ["ip", "route", "del", "unreachable", f"{b.address}/32"]

    def kernel_side() -> int:
        sock = socket.create_connection((b.address, PORT), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 2000)
        sock.settimeout(20)
        r.run(block)
        try:
            sock.sendall(b"ping")
            sock.recv(1)
        except OSError as exc:
            return exc.errno or 0
        finally:
            sock.close()
            r.run(unblock)
        return 0

    async def aiotcp_side() -> dict[str, Any]:
        reader, writer = await aiotcp.open_connection(b.address, PORT, user_timeout=2.0)
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        r.run(block)
        writer.write(b"ping")
        info = writer.get_extra_info("aiotcp")
        deadline = time.monotonic() + 10
        while info.soft_error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            info = writer.get_extra_info("aiotcp")
        report: dict[str, Any] = {"soft": info.soft_error, "state": info.state}
        report["ss"] = "soft_err:EHOSTUNREACH" in format_rows(aiotcp.get_stack().table())
        try:
            await asyncio.wait_for(reader.read(1), 20)
        except OSError as exc:
            report["errno"] = exc.errno
        writer.close()
        return report

    with kernel_echo_server(b, PORT):
        kernel_errno = a.call(kernel_side, timeout=60)
        with a.entered():
            report = run(aiotcp_side, loop_kind)
    assert report == {
        "soft": errno.EHOSTUNREACH,
        "state": "ESTABLISHED",
        "ss": True,
        "errno": kernel_errno,
    }
    assert kernel_errno == errno.EHOSTUNREACH


def test_fragmentation_needed_lowers_the_mss_and_the_transfer_completes(
    loop_kind: LoopKind,
) -> None:
    """R's link to B takes 1280-byte packets while both ends announce a 1460-byte
    MSS: A's first full-size segments draw "fragmentation needed" (RFC 1191) and
    every byte still arrives, in smaller segments."""
    require_root()
    size = 4 << 20
    data = pattern(size, seed=7)

    async def main() -> dict[str, Any]:
        _, writer = await aiotcp.open_connection(topo.b.address, PORT)
        for i in range(0, size, 65536):
            writer.write(data[i : i + 65536])
            await writer.drain()
        info = writer.get_extra_info("aiotcp")
        while info.send_queue or info.snd_una != info.snd_nxt:  # all of it acknowledged
            await asyncio.sleep(0.05)
            info = writer.get_extra_info("aiotcp")
        writer.close()
        await writer.wait_closed()
        return {"mss": info.mss, "reductions": info.counters["pmtu_reductions"]}

    with routed_hosts(far_mtu=1280) as topo, kernel_sink(topo.b, PORT) as sink:
        with topo.a.entered():
            report = run(main, loop_kind)
        assert sink.read_result(timeout=60) == (size, hashlib.sha256(data).hexdigest())
    assert report["reductions"] >= 1
    assert report["mss"] <= 1280 - 40


def forged_error(routed: Routed, icmp: ICMP, lport: int, seq: int) -> None:
    """Send A an ICMP error from R quoting a segment A → B (any sequence number)."""
    a, r, b = routed.a, routed.r, routed.b
    quoted = IP(src=a.address, dst=b.address, flags="DF") / TCP(
        sport=lport, dport=PORT, seq=seq, flags="A"
    )
    packet = bytes(IP(src=r.address, dst=a.address) / icmp / bytes(quoted)[:28])

    def send() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
            sock.sendto(packet, (a.address, 0))

    r.call(send)


def test_forged_errors_quoting_unsent_sequence_numbers_are_ignored(
    routed: Routed, loop_kind: LoopKind
) -> None:
    """RFC 5927 §4.1: an error must quote a sequence number in flight; others (an
    attacker guessing) neither shrink the MSS nor leave an error.  The same error
    with a sequence number in flight is acted on, so the path itself works."""

    async def main() -> dict[str, Any]:
        reader, writer = await aiotcp.open_connection(routed.b.address, PORT)
        writer.write(b"x" * 100)
        await reader.readexactly(100)
        info = writer.get_extra_info("aiotcp")
        lport = writer.get_extra_info("sockname")[1]
        bad = (info.snd_una + 50_000_000) & 0xFFFFFFFF
        stack = aiotcp.get_stack()
        forged_error(routed, ICMP(type=3, code=4, nexthopmtu=600), lport, bad)
        forged_error(routed, ICMP(type=3, code=1), lport, bad)
        forged_error(routed, ICMP(type=11, code=0), lport, bad)
        while stack.counters["icmp_ignored"] < 3:
            await asyncio.sleep(0.02)
        after_forged = writer.get_extra_info("aiotcp")
        writer.write(b"y" * 100)
        await reader.readexactly(100)
        now = writer.get_extra_info("aiotcp")  # nothing in flight: SND.UNA itself
        forged_error(routed, ICMP(type=3, code=4, nexthopmtu=1000), lport, now.snd_una)
        while stack.counters["icmp_acted_on"] < 1:
            await asyncio.sleep(0.02)
        after_valid = writer.get_extra_info("aiotcp")
        writer.close()
        return {
            "mss": (info.mss, after_forged.mss, after_valid.mss),
            "soft": after_forged.soft_error,
        }

    with kernel_echo_server(routed.b, PORT), routed.a.entered():
        report = run(main, loop_kind, timeout=30)
    mss, forged_mss, valid_mss = report["mss"]
    assert forged_mss == mss and report["soft"] is None
    assert valid_mss < mss and valid_mss <= 1000 - 40


def test_a_black_hole_is_crossed_by_mtu_probing(loop_kind: LoopKind) -> None:
    """The same narrow link, but R's "fragmentation needed" never leaves R (a
    firewall that drops ICMP): full-size segments vanish without a word.  After
    R1 timeouts the connection suspects the MTU, falls back to the base MSS and
    probes its way up (RFC 4821, ``mtu_probing=1`` as Linux's tcp_mtu_probing);
    every byte arrives."""
    require_root()
    size = 4 << 20
    data = pattern(size, seed=8)

    async def main() -> dict[str, Any]:
        _, writer = await aiotcp.open_connection(topo.b.address, PORT, mtu_probing=1)
        for i in range(0, size, 65536):
            writer.write(data[i : i + 65536])
            await writer.drain()
        info = writer.get_extra_info("aiotcp")
        while info.send_queue or info.snd_una != info.snd_nxt:
            await asyncio.sleep(0.05)
            info = writer.get_extra_info("aiotcp")
        writer.close()
        await writer.wait_closed()
        return {"mss": info.mss, **info.counters}

    with routed_hosts(far_mtu=1280) as topo, kernel_sink(topo.b, PORT) as sink:
        drop_icmp = ["iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type"]
        topo.r.run([*drop_icmp, "fragmentation-needed", "-j", "DROP"])
        with topo.a.entered():
            report = run(main, loop_kind, timeout=60)
        assert sink.read_result(timeout=60) == (size, hashlib.sha256(data).hexdigest())
    assert report["pmtu_reductions"] == 0  # no ICMP came through
    assert report["mtu_black_holes"] >= 1 and report["mtu_probes"] >= 1
    assert 1024 <= report["mss"] <= 1280 - 52
