"""The stack's own pcap: every segment it sent and received, readable by scapy."""

from __future__ import annotations

import asyncio
import pathlib

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_echo_server


def test_pcap_holds_every_segment_sent_and_received(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str, tmp_path: pathlib.Path
) -> None:
    a, b = family_hosts
    path = tmp_path / "trace.pcap"

    async def main() -> aiotcp.Stack:
        reader, writer = await aiotcp.open_connection(b.address_of(family), 7000)
        writer.write(b"hello pcap\n" * 1000)
        await reader.readexactly(11000)
        writer.close()
        await writer.wait_closed()
        for _ in range(100):  # until the peer's FIN is in: the close is complete
            if [r["state"] for r in aiotcp.connections()] == ["TIME-WAIT"]:
                break
            await asyncio.sleep(0.02)
        return aiotcp.get_stack()

    with kernel_echo_server(b, 7000), a.entered():
        stack = run(main, loop_kind, pcap=str(path))  # closed on return: counts are final
    counters = stack.counters
    packets = rdpcap(str(path))
    assert stack.pcap is not None and len(packets) == stack.pcap.records
    sent = counters.get("tx_packets", 0) + counters.get("gso_frames", 0)
    assert len(packets) == counters["rx_packets"] + sent
    flags = [str(p[TCP].flags) for p in packets if TCP in p]
    assert flags[0] == "S" and flags[1] == "SA"  # handshake first, in order
    assert sum("F" in f for f in flags) == 2
    ip = IP if family == "ipv4" else IPv6
    assert all(ip in p for p in packets)
    ours = a.address_of(family)
    payload = b"".join(bytes(p[TCP].payload) for p in packets if p[ip].src == ours)
    assert payload == b"hello pcap\n" * 1000
