"""The raw sockets read with ``recvmmsg`` (``aiotcp.io.mmsg``), on real sockets:
segments sent by the peer namespace's kernel arrive whole and in order, over IPv6
with their addresses, interface and traffic class taken from where the kernel
wrote them."""

from __future__ import annotations

import collections
import select
import socket
import time
from collections.abc import Iterator

import pytest

from aiotcp.core.checksum import pseudo_header_sum
from aiotcp.core.segment import DropReason, Segment, encode
from aiotcp.io.mmsg import MessageRing
from aiotcp.io.packet import Ipv4Receiver, Ipv6Receiver, Packet, RingReceiver
from aiotcp.testing.netns import Host

pytestmark = pytest.mark.root
RST_ACK = 0x14  # segments the receiving kernel will not answer with RSTs of its own
EF_ECT1 = 0x2E << 2 | 1  # DSCP EF, ECT(1)


def raw_socket(family: socket.AddressFamily) -> socket.socket:
    """A raw TCP socket set up as the stack's: over IPv6, destination and traffic
    class as control messages."""
    sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVTCLASS, 1)
    sock.setblocking(False)
    return sock


@pytest.fixture
def receiving(hosts6: tuple[Host, Host]) -> Iterator[tuple[Host, Host, socket.socket]]:
    """A's raw IPv6 socket."""
    sock = hosts6[0].call(raw_socket, socket.AF_INET6)
    try:
        yield (*hosts6, sock)
    finally:
        sock.close()


def send_from(b: Host, segments: list[bytes], to: str, tclass: int = 0) -> None:
    """Send from B's raw socket, whose kernel adds the IP header only."""
    family = socket.AF_INET6 if ":" in to else socket.AF_INET

    def send() -> None:
        with socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_TCP) as raw:
            control = [(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, tclass.to_bytes(4, "little"))]
            for data in segments:
                raw.sendmsg([data], control if tclass else [], 0, (to, 0))

    b.call(send)


Received = tuple[bytes, bytes, int, int, bytes]
"""A packet as a test compares it: source, destination, sequence number, ECN bits
and payload (copied: a batch's payloads are views the next batch reuses)."""


def drained(
    receiver: RingReceiver,
    sock: socket.socket,
    expected: int,
    max_packets: int = 256,
) -> tuple[list[list[Received]], collections.Counter[str]]:
    """Every batch until ``expected`` segments were received (or 3 s passed)."""
    batches: list[list[Received]] = []
    counters: collections.Counter[str] = collections.Counter()
    deadline = time.monotonic() + 3
    while counters["rx_packets"] < expected and time.monotonic() < deadline:
        select.select([sock], [], [], 0.1)
        batch: list[Packet] = []
        receiver.drain(max_packets, counters, batch)
        if batch:
            batches.append([copied(p) for p in batch])
    return batches, counters


def copied(p: Packet) -> Received:
    seg = p.segment
    return p.src, p.dst, seg.seq, seg.ecn, bytes(seg.payload)


def test_segments_take_addresses_interface_and_class_from_control_messages(
    receiving: tuple[Host, Host, socket.socket],
) -> None:
    """Both addresses, the ECN bits from the traffic class, and a partial checksum
    trusted off a wire but not from a wire, in a packet no longer than its MTU."""
    a, b, sock = receiving
    assert a.address6 is not None and b.address6 is not None
    src = socket.inet_pton(socket.AF_INET6, b.address6)
    dst = socket.inet_pton(socket.AF_INET6, a.address6)
    whole = encode(Segment(40000, 8080, 100, 1, RST_ACK, 0, 0, b"whole"), src, dst)
    partial = bytearray(encode(Segment(40000, 8080, 200, 1, RST_ACK, 0, 0, b"part"), src, dst))
    partial[16:18] = pseudo_header_sum(src, dst, len(partial)).to_bytes(2, "big")
    ring = MessageRing(sock)
    send_from(b, [whole, bytes(partial)], a.address6, EF_ECT1)
    batches, counters = drained(Ipv6Receiver(ring, True, None, {}), sock, 2)
    assert [p for batch in batches for p in batch] == [
        (src, dst, 100, 1, b"whole"),
        (src, dst, 200, 1, b"part"),
    ]
    assert counters["rx_bytes"] == len(whole) + len(partial)

    ifindex = a.call(socket.if_nametoindex, a.ifname)
    send_from(b, [bytes(partial)], a.address6)
    wire = Ipv6Receiver(ring, True, None, {ifindex: 1500})
    batches, counters = drained(wire, sock, 1)
    assert batches == [] and counters["drop_" + DropReason.BAD_CHECKSUM.value] == 1


@pytest.mark.parametrize(("slots", "max_packets"), [(4, 256), (64, 3)])
def test_a_burst_longer_than_a_call_arrives_whole_in_order(
    family_hosts: tuple[Host, Host], family: str, slots: int, max_packets: int
) -> None:
    """One call takes at most the ring's slots or the caller's limit; the rest
    waits in the socket for the next batch, nothing lost, reordered or mixed."""
    a, b = family_hosts
    to, me = a.address_of(family), b.address_of(family)
    six = family == "ipv6"
    kind = socket.AF_INET6 if six else socket.AF_INET
    src, dst = socket.inet_pton(kind, me), socket.inet_pton(kind, to)
    payloads = [bytes([i]) * (100 + 997 * i) for i in range(10)]
    segments = [
        encode(Segment(40000, 8080, 1000 * i, 1, RST_ACK, 0, 0, data), src, dst)
        for i, data in enumerate(payloads)
    ]
    sock = a.call(raw_socket, kind)
    try:
        send_from(b, segments, to)
        if six:
            receiver: RingReceiver = Ipv6Receiver(MessageRing(sock, slots), True, None, {})
        else:
            ring = MessageRing(sock, slots, name_size=0, control_size=0)
            receiver = Ipv4Receiver(ring, True, None)
        batches, counters = drained(receiver, sock, len(segments), max_packets)
    finally:
        sock.close()
    assert max(len(batch) for batch in batches) == min(slots, max_packets)
    got = [p for batch in batches for p in batch]
    assert got == [(src, dst, 1000 * i, 0, data) for i, data in enumerate(payloads)]
    assert counters["rx_packets"] == len(segments)


def test_a_ring_needs_room_for_an_ipv6_sender_address(
    receiving: tuple[Host, Host, socket.socket],
) -> None:
    with pytest.raises(ValueError, match="sockaddr_in6"):
        Ipv6Receiver(MessageRing(receiving[2], name_size=16), True, None, {})
