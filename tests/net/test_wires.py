"""Wires (``aiotcp.io.wires``): a segment that came in on a NIC must carry a real TCP
checksum, unless it is a GRO aggregate; elsewhere the pseudo-header sum that local
senders leave in the field (CHECKSUM_PARTIAL) is accepted."""

from __future__ import annotations

import asyncio
import socket
from ipaddress import ip_address

import pytest

import aiotcp
from aiotcp.core.checksum import pseudo_header_sum
from aiotcp.core.segment import ACK, PSH, Segment, encode
from aiotcp.io import wires
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_source, pattern
from aiotcp.testing.scripted import ScriptedEndpoint, start_peer, while_peer_runs

PEER_PORT = 5000
SERVER_PORT = 8080
PEER_ISN = 0xFFFFFF00


def test_software_interfaces_are_not_wires(hosts: tuple[Host, Host]) -> None:
    """veth and loopback carry partial checksums from local senders; a NIC on a
    hardware bus that is not paravirtual (none here) would be a wire."""
    a, _ = hosts
    with a.entered():
        assert wires.driver_info(a.ifname) == ("veth", "")
        assert wires.driver_info("lo") is None
        assert wires.find_wires() == []
        (named,) = wires.find_wires([a.ifname])
        assert named.index == socket.if_nametoindex(a.ifname) and named.mtu == 1500
        with pytest.raises(ValueError, match="no interface"):
            wires.find_wires(["nonexistent0"])


def corrupted_with_the_seed(ep: ScriptedEndpoint, seq: int, ack: int, payload: bytes) -> bytes:
    """A data segment whose payload was damaged on the way and whose checksum field
    holds exactly the pseudo-header sum: a partial checksum, to look at."""
    src, dst = ip_address(ep.local[0]).packed, ip_address(ep.remote[0]).packed
    seg = Segment(ep.local[1], ep.remote[1], seq, ack, PSH | ACK, 65535, 0, payload)
    raw = bytearray(encode(seg, src, dst))
    raw[16:18] = pseudo_header_sum(src, dst, len(raw)).to_bytes(2, "big")
    raw[-1] ^= 0x01
    return bytes(raw)


@pytest.mark.parametrize("as_wire", [True, False], ids=["wire", "software"])
def test_a_corrupted_segment_with_the_seed_as_checksum_is_dropped_from_a_wire(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, as_wire: bool
) -> None:
    """From a wire the corrupted segment fails verification: dropped, counted, and
    the retransmission is what the application reads.  From a software interface
    (the default for veth) the same segment is taken as a local partial checksum:
    that is the trade-off ``aiotcp.io.wires`` describes, and why wires differ."""
    a, b = family_hosts
    received: asyncio.Queue[bytes] = asyncio.Queue()

    def script(ep: ScriptedEndpoint) -> None:
        ep.send_segment("S", seq=PEER_ISN, win=65535, mss=1460)
        ep.expect_segment("SA", ack=ep.snd(1), within=(0, 0.5))
        ep.send_segment("A", seq=ep.snd(1), ack=ep.rcv(1))
        corrupted = corrupted_with_the_seed(ep, ep.snd(1), ep.rcv(1), b"hello")
        ep.raw.send(corrupted, ip_address(ep.local[0]).packed, ip_address(ep.remote[0]).packed)
        if as_wire:
            ep.expect_silence(0.2)  # dropped: nothing to acknowledge
            ep.send_segment("PA", seq=ep.snd(1), ack=ep.rcv(1), payload=b"hello")
        ep.expect_segment("A", ack=ep.snd(6), within=(0, 0.5))

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.put_nowait(await reader.readexactly(5))

    async def main() -> None:
        stack = aiotcp.get_stack()
        async with await aiotcp.start_server(serve, port=SERVER_PORT):
            remote = (a.address_of(family), SERVER_PORT)
            peer = await start_peer(b, PEER_PORT, remote, script, address=b.address_of(family))
            await while_peer_runs(peer, peer)
            data = await asyncio.wait_for(received.get(), 5)
        assert data == (b"hello" if as_wire else b"helln")
        assert stack.counters["drop_bad_checksum"] == (1 if as_wire else 0)

    with a.entered():
        run(main, loop_kind, wire_interfaces=[a.ifname] if as_wire else None)


def test_a_bulk_transfer_from_a_wire_arrives_whole(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """B's kernel computes every checksum itself (transmit offload off, as a sender
    behind a NIC); aiotcp treats its veth as a wire: single segments are verified
    in full, GRO aggregates pass on their pseudo-header sum, and a transfer arrives
    byte-exact with nothing dropped."""
    a, b = family_hosts
    b.run(["ethtool", "-K", b.ifname, "tx", "off"])
    a.run(["ethtool", "-K", a.ifname, "gro", "on"])  # as a NIC's driver does: aggregates
    size = 8 * 1024 * 1024

    async def main() -> None:
        stack = aiotcp.get_stack()
        reader, writer = await aiotcp.open_connection(b.address_of(family), 7000)
        got = await reader.read()
        writer.close()
        assert got == pattern(size)
        assert stack.counters["drop_bad_checksum"] == 0
        # Most arrived as GRO aggregates (pseudo-header sum in the field, longer
        # than the MTU), which a wire's socket trusts.
        assert stack.counters["rx_bytes"] > 1500 * stack.counters["rx_packets"]

    with kernel_source(b, 7000, size), a.entered():
        run(main, loop_kind, wire_interfaces=[a.ifname])
