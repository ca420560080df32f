"""A reuse_port group's flows: the BPF share block agrees with ``flow_bucket``,
every bucket has one owner, and a worker keeps what it still has."""

from __future__ import annotations

import collections
import random
import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiotcp.io import bpf
from aiotcp.io.flow_share import BUCKETS, FlowShare, flow_bucket, share_of, to_ranges
from aiotcp.testing.netns import require_root

SYN, ACK = 0x02, 0x10


def tcp_header(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def ipv4(src: bytes, dst: bytes, sport: int, dport: int, flags: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0, src, dst)
    return ip + tcp_header(sport, dport, flags)


def ipv6_header(src: bytes, dst: bytes) -> bytes:
    return struct.pack("!IHBB16s16s", 6 << 28, 20, 6, 64, src, dst)


addresses4 = st.binary(min_size=4, max_size=4)
addresses6 = st.binary(min_size=16, max_size=16)
ports = st.integers(1, 65535)


@given(addresses4, addresses4, ports, ports)
def test_the_ipv4_block_computes_flow_bucket(
    src: bytes, dst: bytes, sport: int, dport: int
) -> None:
    bucket = flow_bucket(src, sport, dst, dport)
    only = FlowShare(syn=((bucket, bucket),))
    prog = bpf.tcp_dst_port_filter([], shares={dport: only})
    assert bpf.run(prog, ipv4(src, dst, sport, dport, SYN)) == bpf.ACCEPT
    others = FlowShare(syn=to_ranges(set(range(BUCKETS)) - {bucket}))
    prog = bpf.tcp_dst_port_filter([], shares={dport: others})
    assert bpf.run(prog, ipv4(src, dst, sport, dport, SYN)) == bpf.DROP


@given(addresses6, addresses6, ports, ports)
def test_the_ipv6_block_reads_the_addresses_from_the_network_header(
    src: bytes, dst: bytes, sport: int, dport: int
) -> None:
    bucket = flow_bucket(src, sport, dst, dport)
    segment = tcp_header(sport, dport, SYN | ACK)
    network = ipv6_header(src, dst) + segment
    mine = bpf.tcp6_dst_port_filter([], shares={dport: FlowShare(syn=((bucket, bucket),))})
    assert bpf.run(mine, segment, network=network) == bpf.ACCEPT
    theirs = FlowShare(syn=to_ranges(set(range(BUCKETS)) - {bucket}))
    prog = bpf.tcp6_dst_port_filter([], shares={dport: theirs})
    assert bpf.run(prog, segment, network=network) == bpf.DROP


def test_a_kept_bucket_admits_everything_but_a_syn() -> None:
    """A flow that outlived the move of its bucket still reaches its worker; a new
    flow of that bucket is the new owner's."""
    src, dst = socket.inet_aton("198.18.0.2"), socket.inet_aton("198.18.0.1")
    bucket = flow_bucket(src, 40000, dst, 8080)
    prog = bpf.tcp_dst_port_filter([], shares={8080: FlowShare(syn=(), keep=((bucket, bucket),))})
    assert bpf.run(prog, ipv4(src, dst, 40000, 8080, SYN)) == bpf.DROP
    for flags in (ACK, SYN | ACK, 0x11, 0x04, 0x18):
        assert bpf.run(prog, ipv4(src, dst, 40000, 8080, flags)) == bpf.ACCEPT


def test_shared_ports_jump_past_the_ranges_and_others_are_unchanged() -> None:
    src, dst = socket.inet_aton("198.18.0.2"), socket.inet_aton("198.18.0.1")
    nothing = FlowShare(syn=())
    prog = bpf.tcp_dst_port_filter([(61000, 65535), (7, 7)], shares={62000: nothing, 7: nothing})
    assert bpf.run(prog, ipv4(src, dst, 1, 62000, SYN)) == bpf.DROP  # inside the range
    assert bpf.run(prog, ipv4(src, dst, 1, 7, ACK)) == bpf.DROP
    assert bpf.run(prog, ipv4(src, dst, 1, 62001, SYN)) == bpf.ACCEPT
    assert bpf.run(prog, ipv4(src, dst, 1, 8, SYN)) == bpf.DROP


@pytest.mark.parametrize("members", [[0], [0, 1], [3, 7], [0, 1, 2], [5, 2, 9, 11, 40]])
def test_every_bucket_has_exactly_one_owner(members: list[int]) -> None:
    owners = collections.Counter[int]()
    for me in members:
        share = share_of(members, me)
        assert share is not None
        lo, hi = share
        owners.update(range(lo, hi + 1))
    assert sorted(owners) == list(range(BUCKETS)) and set(owners.values()) == {1}
    assert share_of(members, 1000) is None


def test_two_workers_get_about_half_of_a_clients_ports_each() -> None:
    """One client host's connections differ only in their source port: the hash
    still spreads them (what the interop test's 1,000 clients rely on)."""
    src, dst = socket.inet_aton("198.18.0.2"), socket.inet_aton("198.18.0.1")
    low = sum(flow_bucket(src, p, dst, 8080) < BUCKETS // 2 for p in range(32768, 33768))
    assert 430 < low < 570
    rng = random.Random(1)
    buckets = collections.Counter(
        flow_bucket(src, rng.randrange(65536), dst, 80) for _ in range(25600)
    )
    assert max(buckets.values()) < 3 * 100 and min(buckets.values()) > 100 // 3


def test_to_ranges_coalesces() -> None:
    assert to_ranges([5, 1, 2, 3, 9, 10]) == ((1, 3), (5, 5), (9, 10))
    assert to_ranges([]) == ()


def test_the_kernel_runs_the_share_block() -> None:
    """The kernel accepts the program (scratch memory, MUL, XOR, JA) and computes
    the same bucket: a SYN to the worker's own bucket arrives, one to any other
    does not."""
    require_root()
    import subprocess
    import sys

    code = _KERNEL_CHECK
    ns = f"fs-{random.randrange(1 << 30)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        out = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["mine4", "none4", "mine6", "none6"]


_KERNEL_CHECK = """
import socket
from aiotcp.io import bpf
from aiotcp.io.flow_share import BUCKETS, FlowShare, flow_bucket, to_ranges

def probe(family, addr, port, share_for):
    a = socket.socket(family, socket.SOCK_STREAM)
    a.bind((addr, 0))
    sport = a.getsockname()[1]
    local = socket.inet_pton(family, addr)
    bucket = flow_bucket(local, sport, local, port)
    raw = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
    shares = {port: share_for(bucket)}
    if family == socket.AF_INET:
        prog = bpf.tcp_dst_port_filter([], shares=shares)
    else:
        prog = bpf.tcp6_dst_port_filter([], shares=shares)
    bpf.attach_fresh(raw, prog)
    raw.settimeout(0.3)
    a.setblocking(False)
    try:
        a.connect((addr, port))
    except BlockingIOError:
        pass
    try:
        raw.recv(100)
        return True
    except TimeoutError:
        return False

mine = lambda b: FlowShare(syn=((b, b),))
others = lambda b: FlowShare(syn=to_ranges(set(range(BUCKETS)) - {b}))
print("mine4" if probe(socket.AF_INET, "127.0.0.1", 9, mine) else "lost4")
print("none4" if not probe(socket.AF_INET, "127.0.0.1", 9, others) else "leak4")
print("mine6" if probe(socket.AF_INET6, "::1", 9, mine) else "lost6")
print("none6" if not probe(socket.AF_INET6, "::1", 9, others) else "leak6")
"""
