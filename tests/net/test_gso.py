"""The AF_PACKET super-segment send path against a kernel receiver.

With TX checksum offload off on the sending veth the kernel computes each
segment's checksum in software from our CHECKSUM_PARTIAL seed, so a wrong seed
shows up as checksum drops at the receiver and the transfer cannot complete.
(With offload on, veth passes the seed along unverified: such a test could not fail.)
"""

from __future__ import annotations

import hashlib

import pytest

import aiotcp
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_sink, pattern

SIZE = 20 * 1024 * 1024


def send_in_blocks(
    hosts: tuple[Host, Host], family: str, loop_kind: LoopKind, data: bytes, **tcp_options: object
) -> dict[str, int]:
    """A's aiotcp writes ``data`` in 64 KiB blocks to a kernel sink on B, which must
    receive every byte; returns A's stack counters."""
    a, b = hosts

    async def main() -> dict[str, int]:
        _, writer = await aiotcp.open_connection(b.address_of(family), 7000, **tcp_options)
        for i in range(0, len(data), 1 << 16):
            writer.write(data[i : i + (1 << 16)])
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        return dict(aiotcp.get_stack().counters)

    with kernel_sink(b, 7000) as sink, a.entered():
        counters = run(main, loop_kind, timeout=30)
        assert sink.read_result() == (len(data), hashlib.sha256(data).hexdigest())
    return counters


@pytest.mark.parametrize("features", [["tx", "off"], ["tx", "off", "tso", "off", "gso", "off"]])
def test_super_segments_arrive_byte_exact_with_software_checksums(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind, features: list[str]
) -> None:
    a, b = family_hosts
    a.run(["ethtool", "-K", a.ifname, *features])
    counters = send_in_blocks(family_hosts, family, loop_kind, pattern(SIZE, seed=21))
    assert counters["gso_frames"] > 0
    assert counters["gso_segments"] > 2 * counters["gso_frames"]  # real runs, not singles
    assert counters.get("gso_fallback", 0) == 0
    # Every ACK pushes the retransmission deadline later; the driver's timer stays
    # armed at the earlier time instead of being re-created per ACK.
    assert counters["timers_armed"] < counters["gso_frames"] // 4
    nstat = b.run(["cat", "/proc/net/snmp"]).stdout  # TCP's counters cover both families
    tcp = dict(
        zip(*[ln.split()[1:] for ln in nstat.splitlines() if ln.startswith("Tcp:")], strict=True)
    )
    assert tcp["InCsumErrors"] == "0"


def test_a_nodelay_write_loop_sends_whole_frames(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    """Autocorking: 64 KiB writes are not multiples of the MSS, but a loop of them
    sends full 45-segment frames, not a frame and a one-segment runt per write
    (23 segments per frame on average), and every byte still arrives."""
    counters = send_in_blocks(family_hosts, family, loop_kind, pattern(SIZE, seed=23), nodelay=True)
    per_frame = counters["gso_segments"] / counters["gso_frames"]
    assert per_frame > 32, counters


def test_without_gso_the_raw_socket_path_still_works(
    family_hosts: tuple[Host, Host], family: str, loop_kind: LoopKind
) -> None:
    a, b = family_hosts
    data = pattern(2 * 1024 * 1024, seed=22)

    async def main() -> dict[str, int]:
        _, writer = await aiotcp.open_connection(b.address_of(family), 7000)
        writer.write(data)
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        return dict(aiotcp.get_stack().counters)

    with kernel_sink(b, 7000) as sink, a.entered():
        counters = run(main, loop_kind, gso=False)
        assert sink.read_result() == (len(data), hashlib.sha256(data).hexdigest())
    assert "gso_frames" not in counters
