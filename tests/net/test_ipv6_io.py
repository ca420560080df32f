"""IPv6 through the raw socket layer, against the kernel's TCP in namespaces.

The stack does not speak IPv6 yet; its receive and send paths do: a cooked packet
socket hands over IPv6 segments to our ports (``parse_ipv6_tcp``), and a raw IPv6
socket sends ours with the addresses, traffic class and hop limit asked for.  Here
they answer a kernel client's SYN by hand: if the kernel's ``connect`` completes,
the SYN-ACK's checksum, addresses and sequence numbers were all right.
"""

from __future__ import annotations

import concurrent.futures
import socket
import time

import pytest

from aiotcp.core.segment import ACK, SYN, Segment
from aiotcp.io import bpf
from aiotcp.io.packet import Packet
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.netns import Host

pytestmark = pytest.mark.root

PORT = 9600


def wait_for(raw: RawSocket, wanted: int, timeout: float = 5.0) -> Packet:
    """The next received packet with all of the ``wanted`` flags."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pkt in raw.recv_batch():
            if pkt.segment.flags & wanted == wanted:
                return pkt
        time.sleep(0.01)
    raise TimeoutError(f"no segment with flags {wanted:#x}")


def test_a_kernel_client_completes_a_handshake_answered_through_the_ipv6_paths(
    hosts6: tuple[Host, Host],
) -> None:
    a, b = hosts6
    assert a.address6 is not None and b.address6 is not None

    def server_side() -> dict[str, object]:
        # The kernel's own TCP must not answer on PORT: a listener that drops all.
        quiet = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        quiet.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        quiet.bind(("::", PORT))
        bpf.attach_drop_all(quiet)
        quiet.listen()
        with quiet, RawSocket(port_ranges=[(PORT, PORT)]) as raw:
            syn = wait_for(raw, SYN)
            seg = syn.segment
            synack = Segment(PORT, seg.src_port, 5000, (seg.seq + 1) & 0xFFFFFFFF, SYN | ACK,
                             65535, 0, b"", mss=1440)  # fmt: skip
            raw.send_segment(synack, syn.dst, syn.src, 0xB8, 9)
            ack = wait_for(raw, ACK)
            return {
                "src": socket.inet_ntop(socket.AF_INET6, syn.src),
                "dst": socket.inet_ntop(socket.AF_INET6, syn.dst),
                "ack": ack.segment.ack,
                "sent": raw.counters["tx_packets"],
            }

    def client_side() -> tuple[str, int]:
        with socket.create_connection((a.address6, PORT), timeout=5) as s:
            return s.getpeername()[:2]

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        server = pool.submit(a.call, server_side)
        time.sleep(0.3)  # the quiet listener and the raw sockets are in place
        peer = b.call(client_side)
        result = server.result(timeout=10)
    assert peer == (a.address6, PORT)
    assert result == {"src": b.address6, "dst": a.address6, "ack": 5001, "sent": 1}
