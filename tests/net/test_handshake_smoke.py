"""Packet-level smoke test: aiotcp's raw socket talks to the real Linux kernel.

Host A opens a connection by hand through the raw socket layer to a kernel echo
server on host B.  The capture on B must show no RST from A while a guard is up;
without a guard it must show the kernel's RST — proof that the guard is what
stops it.
"""

from __future__ import annotations

import time

import pytest

from aiotcp.core.segment import ACK, RST, SYN, Segment
from aiotcp.demo.handshake import scripted_echo_exchange
from aiotcp.io.guards import guarded_raw_socket, make_guard
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.capture import capture
from aiotcp.testing.netns import Host, kernel_echo_server
from aiotcp.testing.scripted import ScriptedEndpoint

PORT = 7
PAYLOAD = b"the quick brown fox jumps over the lazy dog\n" * 20


@pytest.mark.parametrize("guard_kind", ["iptables", "socket"])
def test_handshake_echo_and_close_with_no_rst_on_the_wire(
    family_hosts: tuple[Host, Host], family: str, guard_kind: str
) -> None:
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    with kernel_echo_server(b, PORT), capture(b, f"tcp port {PORT}") as cap:
        with a.entered(), guarded_raw_socket(guard_kind) as (raw, [port]):  # type: ignore[arg-type]
            result = scripted_echo_exchange(raw, (here, port), (there, PORT), PAYLOAD)
            time.sleep(0.3)  # room for a late kernel RST to show up in the capture
    assert result.echoed == PAYLOAD
    assert result.closed and not result.rst_received
    from_a = [s for s in cap.segments(PORT) if s.src == here]
    assert [s.flags for s in from_a][:2] == ["S", "."]
    assert not [s for s in from_a if "R" in s.flags], "a RST left host A"
    assert sum(1 for s in cap.segments(PORT) if "F" in s.flags) == 2


def test_without_a_guard_the_kernel_resets_the_connection(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    with kernel_echo_server(b, PORT), capture(b, f"tcp port {PORT}") as cap:
        with a.entered(), guarded_raw_socket("none") as (raw, [port]):
            ep = ScriptedEndpoint(raw, (here, port), (there, PORT))
            ep.send(Segment(seq=1000, flags=SYN, window=64240, mss=1460))
            synack = ep.expect(lambda s: s.flags & (SYN | ACK) == SYN | ACK)
            assert synack is not None
            time.sleep(0.3)
    resets = [s for s in cap.segments(PORT) if s.src == here and "R" in s.flags]
    assert resets, "expected the kernel on A to answer the SYN-ACK with a RST"
    assert resets[0].seq == 1001  # RFC 9293 §3.10.7.1: RST seq = the SYN-ACK's ack


def test_raw_socket_filter_admits_only_owned_ports(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    """Kernel traffic on other ports never wakes the raw socket up."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    with kernel_echo_server(b, PORT), a.entered(), make_guard("iptables") as guard:
        port = guard.claim()
        with RawSocket(port_ranges=guard.port_ranges()) as raw:
            conn = a.connect(there, PORT)  # a kernel connection from A, not ours
            with conn:
                conn.sendall(b"x" * 10000)
                got = 0
                while got < 10000:
                    got += len(conn.recv(65536))
            time.sleep(0.1)
            assert raw.recv_batch() == []
            assert raw.counters["rx_packets"] == 0
            ep = ScriptedEndpoint(raw, (here, port), (there, PORT))
            ep.send(Segment(seq=5, flags=SYN, window=1000))
            assert ep.expect(lambda s: bool(s.flags & SYN)) is not None


@pytest.mark.parametrize("guard_kind", ["iptables", "socket"])
def test_aiotcps_own_rst_still_leaves_under_the_guard(
    family_hosts: tuple[Host, Host], family: str, guard_kind: str
) -> None:
    """The guard drops only the kernel's RSTs: an abort by aiotcp must reach the peer."""
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    with kernel_echo_server(b, PORT), capture(b, f"tcp port {PORT}") as cap:
        with a.entered(), guarded_raw_socket(guard_kind) as (raw, [port]):  # type: ignore[arg-type]
            ep = ScriptedEndpoint(raw, (here, port), (there, PORT))
            ep.send(Segment(seq=1000, flags=SYN, window=64240, mss=1460))
            synack = ep.expect(lambda s: s.flags & (SYN | ACK) == SYN | ACK)
            assert synack is not None
            ep.send(Segment(seq=1001, ack=synack.seq + 1, flags=RST | ACK))
            time.sleep(0.2)
    resets = [s for s in cap.segments(PORT) if s.src == here and "R" in s.flags]
    assert [(r.seq, r.flags) for r in resets] == [(1001, "R.")]
