"""The raw socket's BPF program admits exactly the owned destination ports."""

from __future__ import annotations

import socket
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiotcp.io import bpf
from aiotcp.testing.netns import require_root


def packet(dport: int, *, ihl: int = 5, frag: int = 0x4000) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 0, 0, frag, 64, 6, 0, bytes(4), bytes(4))
    ip += bytes(4 * (ihl - 5))
    return ip + struct.pack("!HH", 1234, dport) + bytes(16)


def admits(prog: list[bpf.Insn], dport: int, **kw: int) -> bool:
    return bpf.run(prog, packet(dport, **kw)) != 0


def test_only_ports_in_ranges_are_admitted() -> None:
    prog = bpf.tcp_dst_port_filter([(61000, 65535), (8080, 8080)])
    assert admits(prog, 61000) and admits(prog, 65535) and admits(prog, 8080)
    assert not admits(prog, 60999) and not admits(prog, 8079) and not admits(prog, 8081)
    assert not admits(prog, 22)


def test_ip_options_shift_the_port_offset() -> None:
    prog = bpf.tcp_dst_port_filter([(80, 80)])
    assert admits(prog, 80, ihl=7)
    assert not admits(prog, 81, ihl=7)


def test_non_first_fragments_are_dropped() -> None:
    prog = bpf.tcp_dst_port_filter([(0, 65535)])
    assert not admits(prog, 80, frag=0x0001)
    assert admits(prog, 80, frag=0x2000)  # first fragment (MF): parser drops it later


@pytest.mark.parametrize("pkttype", [1, 2, 3])  # PACKET_BROADCAST, _MULTICAST, _OTHERHOST
def test_only_segments_addressed_to_this_host_pass(pkttype: int) -> None:
    """RFC 9293 §3.9.2.3 (MUST-57): a SYN to a broadcast or multicast address is
    dropped, as Linux's tcp_v4_rcv drops every segment that is not PACKET_HOST."""
    prog = bpf.tcp_dst_port_filter([(80, 80)])
    assert bpf.run(prog, packet(80), pkttype=bpf.PACKET_HOST) != 0
    assert bpf.run(prog, packet(80), pkttype=pkttype) == 0


def test_empty_set_admits_nothing() -> None:
    prog = bpf.tcp_dst_port_filter([])
    assert not any(admits(prog, p) for p in (0, 1, 80, 65535))


def test_merge_coalesces_adjacent_and_overlapping() -> None:
    assert bpf.merge_ranges([(5, 5), (1, 3), (4, 4), (10, 20), (15, 30)]) == [(1, 5), (10, 30)]


def test_merge_rejects_bad_ranges() -> None:
    with pytest.raises(ValueError):
        bpf.merge_ranges([(10, 5)])
    with pytest.raises(ValueError):
        bpf.merge_ranges([(1, 70000)])


def test_thousands_of_ports_fit_the_kernel_limit_as_a_superset() -> None:
    ports = list(range(1000, 11000, 2))  # 5,000 separate ports
    prog = bpf.tcp_dst_port_filter((p, p) for p in ports)
    assert len(prog) <= bpf.BPF_MAXINSNS
    assert all(admits(prog, p) for p in ports[::97])


@given(
    st.lists(st.tuples(st.integers(0, 65535), st.integers(0, 300)), max_size=40),
    st.integers(0, 65535),
)
def test_filter_matches_range_membership(spans: list[tuple[int, int]], port: int) -> None:
    ranges = [(lo, min(lo + n, 65535)) for lo, n in spans]
    prog = bpf.tcp_dst_port_filter(ranges)
    assert admits(prog, port) == any(lo <= port <= hi for lo, hi in ranges)


def datagram_dropped(sock: socket.socket) -> bool:
    """Send ``sock`` a datagram over loopback: was it dropped by its filter?"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        tx.sendto(b"x", sock.getsockname())
    sock.settimeout(0.2)
    try:
        sock.recv(16)
    except TimeoutError:
        return True
    return False


@pytest.mark.parametrize("shared", [True, False])
def test_drop_all_filter_drops_everything(shared: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guards' drop-all filter, loaded once as eBPF and attached by fd (root), or
    the classic program that each attach JIT-compiles anew (the fallback)."""
    require_root()
    if shared:
        assert bpf._shared_drop_all() is not None  # x86_64 as root: the fast path runs
    else:
        monkeypatch.setattr(bpf, "_shared_drop_all", lambda: None)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as plain:
        plain.bind(("127.0.0.1", 0))
        assert not datagram_dropped(plain)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as filtered:
        filtered.bind(("127.0.0.1", 0))
        bpf.attach_drop_all(filtered)
        assert datagram_dropped(filtered)


def test_a_wire_socket_admits_its_interface_only_and_the_main_one_the_rest() -> None:
    """``aiotcp.io.wires``: each wire's packets reach the socket of that wire alone."""
    wire = bpf.tcp_dst_port_filter([(8080, 8080)], only_interface=3)
    rest = bpf.tcp_dst_port_filter([(8080, 8080)], not_interfaces=[3, 7])
    for ifindex in (1, 2, 3, 7, 9):
        admitted_by = [bpf.run(p, packet(8080), ifindex=ifindex) != 0 for p in (wire, rest)]
        assert admitted_by == ([True, False] if ifindex == 3 else [False, ifindex != 7])
    assert bpf.run(wire, packet(8081), ifindex=3) == 0  # the ports still decide


@pytest.mark.root
def test_the_kernel_accepts_the_interface_filters() -> None:
    require_root()
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP) as s:
        bpf.attach(s, bpf.tcp_dst_port_filter([(1, 2)], only_interface=1))
        bpf.attach(s, bpf.tcp_dst_port_filter([(1, 2)], not_interfaces=[1, 2, 3]))
