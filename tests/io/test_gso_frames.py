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
from aiotcp.io.gso import address_sum, frame_headers, is_plain_timestamped, timestamped_headers

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
address = st.binary(min_size=4, max_size=4)


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
