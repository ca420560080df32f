"""ICMP and ICMPv6 errors from a real router reach aiotcp's connections as they
reach the kernel's sockets (RFC 9293 §3.9.2.2, RFC 5927, RFC 1191, RFC 8201).

Topology: A (aiotcp, and the kernel for comparison) – R (a Linux router) – B (a
kernel server).  R produces the errors the way routers do: no route, an
``unreachable`` or ``prohibit`` route, a REJECT rule, a narrower next link.  Each
errno is checked against what the kernel's own ``connect`` reports from A in
the same topology, so the test follows Linux rather than our reading of it.
Every test runs over IPv4 and IPv6 (the ``family`` fixture); over IPv6 the
errors are ICMPv6's, and Linux maps some of them to other errnos
(``icmpv6_err_convert``: a prohibited destination is EACCES, an ``unreachable``
route "no route", ENETUNREACH).
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
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6PacketTooBig, ICMPv6TimeExceeded, IPv6
from scapy.packet import Packet

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
    subnet_address,
    subnet_address6,
    sysctl,
)

pytestmark = pytest.mark.root

PORT = 7100
IP_HEADER = {"ipv4": 20, "ipv6": 40}
COUNTERS = {"ipv4": "icmp", "ipv6": "icmp6"}
"""Each family's prefix of the stack's ICMP counters (``icmp6_acted_on``...)."""


@pytest.fixture
def routed(family: str) -> Iterator[Routed]:
    require_root()
    with routed_hosts(ipv6=family == "ipv6") as topo:
        sysctl(topo.r, "net.ipv4.icmp_ratelimit", "0")  # an error for every probe
        if family == "ipv6":
            sysctl(topo.r, "net.ipv6.icmp.ratelimit", "0")
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


# the errno each failure ends a connect with, by family (checked against the kernel's)
FAILURES: dict[str, dict[str, int]] = {
    "no-route": {"ipv4": errno.ENETUNREACH, "ipv6": errno.ENETUNREACH},
    "unreachable-route": {"ipv4": errno.EHOSTUNREACH, "ipv6": errno.ENETUNREACH},  # v6: code 0
    "prohibit-route": {"ipv4": errno.EHOSTUNREACH, "ipv6": errno.EACCES},
    "reject-rule": {"ipv4": errno.ECONNREFUSED, "ipv6": errno.ECONNREFUSED},
    "reject-host-rule": {"ipv4": errno.EHOSTUNREACH, "ipv6": errno.EHOSTUNREACH},
}
REJECT_WITH = {
    "reject-rule": {"ipv4": "icmp-port-unreachable", "ipv6": "icmp6-port-unreachable"},
    "reject-host-rule": {"ipv4": "icmp-host-unreachable", "ipv6": "icmp6-addr-unreachable"},
}
UNROUTED = {"no-route": 200, "unreachable-route": 201, "prohibit-route": 202}
"""The subnet of the address A connects to, in a network R has no route for."""


def break_path(topo: Routed, family: str, failure: str) -> str:
    """Make R fail the path to the address returned, as ``failure`` says."""
    if failure in REJECT_WITH:
        iptables = "iptables" if family == "ipv4" else "ip6tables"
        match = ["-A", "FORWARD", "-p", "tcp", "--dport", str(PORT)]
        topo.r.run(
            [iptables, *match, "-j", "REJECT", "--reject-with", REJECT_WITH[failure][family]]
        )
        return topo.b.address_of(family)
    subnet = UNROUTED[failure]
    if family == "ipv4":
        address, network = subnet_address(subnet, 1), f"{subnet_address(subnet, 1)[:-1]}0/24"
    else:
        address = subnet_address6(subnet, 1)
        network = f"{address[:-1]}/64"
    if failure != "no-route":  # an "unreachable" or "prohibit" route
        topo.r.run(["ip", "route", "add", failure.removesuffix("-route"), network])
    return address


@pytest.mark.parametrize("failure", list(FAILURES))
def test_connect_fails_at_once_with_the_kernels_errno(
    routed: Routed, loop_kind: LoopKind, family: str, failure: str
) -> None:
    """Without ICMP a connect waits out every SYN retry (over a minute); with it,
    both stacks fail within the round trip and agree on the errno."""
    addr = break_path(routed, family, failure)
    kernel_errno, _ = kernel_connect(routed.a, addr, PORT)
    assert kernel_errno is not None
    got, elapsed = aiotcp_connect(routed.a, addr, PORT, loop_kind)
    assert (errno.errorcode.get(got or 0), elapsed < 1.0) == (
        errno.errorcode[kernel_errno],
        True,
    )
    assert got == FAILURES[failure][family]


def test_errors_on_an_open_connection_are_soft_then_reported_on_timeout(
    routed: Routed, loop_kind: LoopKind, family: str
) -> None:
    """Once established, an unreachable is only remembered (RFC 1122 §4.2.3.9); when
    the connection then gives up, the user hears the unreachable's errno rather
    than ETIMEDOUT, as from the kernel (``sk_err_soft``): EHOSTUNREACH, or over
    IPv6 ENETUNREACH (an ``unreachable`` route sends "no route")."""
    a, r, b = routed.a, routed.r, routed.b
    peer = b.address_of(family)
    host_route = f"{peer}/{32 if family == 'ipv4' else 128}"
    block = ["ip", "route", "add", "unreachable", host_route]
    unblock = ["ip", "route", "del", "unreachable", host_route]
    expected = errno.EHOSTUNREACH if family == "ipv4" else errno.ENETUNREACH

    def kernel_side() -> int:
        sock = socket.create_connection((peer, PORT), timeout=5)
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
        reader, writer = await aiotcp.open_connection(peer, PORT, user_timeout=2.0)
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
        table = format_rows(aiotcp.get_stack().table())
        report["ss"] = f"soft_err:{errno.errorcode[expected]}" in table
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
        "soft": expected,
        "state": "ESTABLISHED",
        "ss": True,
        "errno": kernel_errno,
    }
    assert kernel_errno == expected


def bulk_through_narrow_link(
    topo: Routed, family: str, loop_kind: LoopKind, seed: int, **tcp_options: Any
) -> dict[str, Any]:
    """4 MB from A to a kernel sink on B, every byte checked; the sender's MSS and
    counters at the end."""
    size = 4 << 20
    data = pattern(size, seed=seed)

    async def main() -> dict[str, Any]:
        _, writer = await aiotcp.open_connection(topo.b.address_of(family), PORT, **tcp_options)
        for i in range(0, size, 65536):
            writer.write(data[i : i + 65536])
            await writer.drain()
        info = writer.get_extra_info("aiotcp")
        while info.send_queue or info.snd_una != info.snd_nxt:  # all of it acknowledged
            await asyncio.sleep(0.05)
            info = writer.get_extra_info("aiotcp")
        writer.close()
        await writer.wait_closed()
        return {"mss": info.mss, **info.counters}

    with kernel_sink(topo.b, PORT) as sink:
        with topo.a.entered():
            report = run(main, loop_kind, timeout=60)
        assert sink.read_result(timeout=60) == (size, hashlib.sha256(data).hexdigest())
    return report


def test_fragmentation_needed_lowers_the_mss_and_the_transfer_completes(
    loop_kind: LoopKind, family: str
) -> None:
    """R's link to B takes 1280-byte packets while both ends announce the MSS of a
    1500-byte link: A's first full-size segments draw "fragmentation needed"
    (RFC 1191), over IPv6 "packet too big" (RFC 8201), and every byte still
    arrives, in smaller segments."""
    require_root()
    with routed_hosts(far_mtu=1280, ipv6=family == "ipv6") as topo:
        report = bulk_through_narrow_link(topo, family, loop_kind, seed=7)
    assert report["pmtu_reductions"] >= 1
    assert report["mss"] <= 1280 - IP_HEADER[family] - 20


def forged_error(
    routed: Routed, family: str, kind: str, lport: int, seq: int, mtu: int = 0
) -> None:
    """Send A an ICMP or ICMPv6 error of ``kind`` from R quoting a segment A → B
    (any sequence number)."""
    a, r, b = routed.a, routed.r, routed.b
    icmp: Packet
    if family == "ipv4":
        outer: Packet = IP(src=r.address, dst=a.address)
        quoted: Packet = IP(src=a.address, dst=b.address, flags="DF")
        icmp = {
            "too-big": ICMP(type=3, code=4, nexthopmtu=mtu),
            "unreachable": ICMP(type=3, code=1),
            "time-exceeded": ICMP(type=11, code=0),
        }[kind]
    else:
        outer = IPv6(src=r.address6, dst=a.address6)
        quoted = IPv6(src=a.address6, dst=b.address6)
        icmp = {
            "too-big": ICMPv6PacketTooBig(mtu=mtu),
            "unreachable": ICMPv6DestUnreach(code=3),
            "time-exceeded": ICMPv6TimeExceeded(code=0),
        }[kind]
    segment = bytes(quoted / TCP(sport=lport, dport=PORT, seq=seq, flags="A"))
    packet = bytes(outer / icmp / segment[: 28 if family == "ipv4" else 60])
    af = socket.AF_INET if family == "ipv4" else socket.AF_INET6

    def send() -> None:
        with socket.socket(af, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
            sock.sendto(packet, (a.address_of(family), 0))

    r.call(send)


def test_forged_errors_quoting_unsent_sequence_numbers_are_ignored(
    routed: Routed, loop_kind: LoopKind, family: str
) -> None:
    """RFC 5927 §4.1: an error must quote a sequence number in flight; others (an
    attacker guessing) neither shrink the MSS nor leave an error.  The same error
    with a sequence number in flight is acted on, so the path itself works."""
    counter = COUNTERS[family]
    small = 1000 if family == "ipv4" else 1280  # over IPv6, no less is heeded

    async def main() -> dict[str, Any]:
        reader, writer = await aiotcp.open_connection(routed.b.address_of(family), PORT)
        writer.write(b"x" * 100)
        await reader.readexactly(100)
        info = writer.get_extra_info("aiotcp")
        lport = writer.get_extra_info("sockname")[1]
        bad = (info.snd_una + 50_000_000) & 0xFFFFFFFF
        stack = aiotcp.get_stack()
        forged_error(routed, family, "too-big", lport, bad, mtu=small)
        forged_error(routed, family, "unreachable", lport, bad)
        forged_error(routed, family, "time-exceeded", lport, bad)
        while stack.counters[counter + "_ignored"] < 3:
            await asyncio.sleep(0.02)
        after_forged = writer.get_extra_info("aiotcp")
        writer.write(b"y" * 100)
        await reader.readexactly(100)
        now = writer.get_extra_info("aiotcp")  # nothing in flight: SND.UNA itself
        forged_error(routed, family, "too-big", lport, now.snd_una, mtu=small)
        while stack.counters[counter + "_acted_on"] < 1:
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
    assert valid_mss < mss and valid_mss <= small - IP_HEADER[family] - 20


def test_a_black_hole_is_crossed_by_mtu_probing(loop_kind: LoopKind, family: str) -> None:
    """The same narrow link, but R's "fragmentation needed" or "packet too big"
    never leaves R (a firewall that drops ICMP): full-size segments vanish
    without a word.  After R1 timeouts the connection suspects the MTU, falls
    back to the base MSS and probes its way up (RFC 4821, ``mtu_probing=1`` as
    Linux's tcp_mtu_probing); every byte arrives."""
    require_root()
    if family == "ipv4":
        drop = ["iptables", "-A", "OUTPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed"]
    else:
        drop = ["ip6tables", "-A", "OUTPUT", "-p", "icmpv6", "--icmpv6-type", "packet-too-big"]
    with routed_hosts(far_mtu=1280, ipv6=family == "ipv6") as topo:
        topo.r.run([*drop, "-j", "DROP"])
        report = bulk_through_narrow_link(topo, family, loop_kind, seed=8, mtu_probing=1)
    assert report["pmtu_reductions"] == 0  # no ICMP came through
    assert report["mtu_black_holes"] >= 1 and report["mtu_probes"] >= 1
    assert 1024 <= report["mss"] <= 1280 - IP_HEADER[family] - 20 - 12
