"""The two ways ``GsoSender`` builds a frame's headers agree, byte for byte.

Request/response traffic takes the fast path (``timestamped_headers``: one
``struct`` call, checksums summed from the fields); everything else the general
one (``frame_headers``).  A wrong checksum on the fast path would be dropped by
the peer's kernel and look like loss, so the two are compared over arbitrary
header values, and the checksums are checked the way a receiver checks them.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aiotcp.core.checksum import ones_sum, pseudo_header_sum
from aiotcp.core.segment import Segment
from aiotcp.io.gso import (
    address_sum,
    frame_headers,
    is_plain_timestamped,
    timestamped_headers,
    timestamped_headers6,
)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
address = st.binary(min_size=4, max_size=4)
address6 = st.binary(min_size=16, max_size=16)
timestamped = {
    "seq": u32, "ack": u32, "sport": u16, "dport": u16,
    "flags": st.sampled_from([0x10, 0x18, 0x11, 0x19, 0x14]), "window": u16,
    "payload": st.binary(max_size=1448), "ts_val": u32, "ts_ecr": u32, "ecn": st.integers(0, 3),
}  # fmt: skip


@given(
    src=address, dst=address, sport=u16, dport=u16, seq=u32, ack=u32,
    flags=st.sampled_from([0x10, 0x18, 0x11, 0x19, 0x14]), window=u16,
    payload=st.binary(max_size=1448), ts_val=u32, ts_ecr=u32, ecn=st.integers(0, 3),
    ip_id=u16, ds=st.integers(0, 63), ttl=st.integers(1, 255),
)  # fmt: skip
def test_the_fast_path_builds_the_general_paths_headers(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
    window: int, payload: bytes, ts_val: int, ts_ecr: int, ecn: int, ip_id: int,
    ds: int, ttl: int,
) -> None:  # fmt: skip
    seg = Segment(sport, dport, seq, ack, flags, window, 0, payload,
                  ts_val=ts_val, ts_ecr=ts_ecr, ecn=ecn)  # fmt: skip
    assert is_plain_timestamped(seg)
    tos = ds << 2 | ecn
    fast = timestamped_headers(seg, src, dst, ip_id, address_sum(src, dst), tos, ttl)
    _, ip, tcp, n = frame_headers([seg], src, dst, ip_id, tos, ttl)
    assert n == 1
    assert fast == ip + tcp
    assert (fast[1], fast[8]) == (tos, ttl)
    assert ones_sum(fast[:20]) == 0xFFFF  # a valid IPv4 header checksum
    assert int.from_bytes(fast[36:38], "big") == pseudo_header_sum(src, dst, 32 + len(payload))


def test_segments_with_other_options_take_the_general_path() -> None:
    assert not is_plain_timestamped(Segment(1, 2, 0, 0, 0x12, 100, 0, b"", mss=1460, ts_val=1))
    assert not is_plain_timestamped(Segment(1, 2, 0, 0, 0x10, 100, 0, b"", ts_val=1,
                                            sack_blocks=((5, 9),)))  # fmt: skip
    assert not is_plain_timestamped(Segment(1, 2, 0, 0, 0x10, 100, 0, b""))  # no timestamps


@given(src=address6, dst=address6, ds=st.integers(0, 63), hops=st.integers(1, 255), **timestamped)
def test_the_ipv6_fast_path_builds_the_general_paths_headers(
    src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
    window: int, payload: bytes, ts_val: int, ts_ecr: int, ecn: int, ds: int, hops: int,
) -> None:  # fmt: skip
    seg = Segment(sport, dport, seq, ack, flags, window, 0, payload,
                  ts_val=ts_val, ts_ecr=ts_ecr, ecn=ecn)  # fmt: skip
    tclass = ds << 2 | ecn
    fast = timestamped_headers6(seg, src, dst, address_sum(src, dst), tclass, hops)
    vnet, ip, tcp, n = frame_headers([seg], src, dst, 0, tclass, hops)
    assert n == 1
    assert fast == ip + tcp
    version_class_flow = int.from_bytes(fast[:4], "big")
    assert (version_class_flow >> 28, version_class_flow >> 20 & 0xFF) == (6, tclass)
    assert int.from_bytes(fast[4:6], "big") == 32 + len(payload)  # payload length: TCP's
    assert (fast[6], fast[7], fast[8:24], fast[24:40]) == (6, hops, src, dst)
    assert int.from_bytes(fast[56:58], "big") == pseudo_header_sum(src, dst, 32 + len(payload))
    assert vnet[6:8] == (14 + 40).to_bytes(2, "little")  # csum_start: after IPv6's header


def test_an_ipv6_run_is_one_tcpv6_gso_frame() -> None:
    src, dst = bytes(15) + b"\1", bytes(15) + b"\2"
    run = [Segment(1, 2, 1000 + 1000 * i, 5, 0x10, 100, 0, bytes(1000), ts_val=1, ts_ecr=2)
           for i in range(3)]  # fmt: skip
    vnet, ip, tcp, n = frame_headers(run, src, dst, 0, 0, 64)
    assert n == 3
    assert vnet[1] == 4 and int.from_bytes(vnet[4:6], "little") == 1000  # TCPV6, gso_size
    assert int.from_bytes(ip[4:6], "big") == len(tcp) + 3000
