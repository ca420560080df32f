"""The IPv4+TCP parser: malformed input is rejected with a reason and never raises."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, TCP  # type: ignore[import-untyped]

from aiotcp.core.segment import ACK, PSH, SYN, DropReason, Segment, encode
from aiotcp.io.packet import Packet, parse_ipv4_tcp

A = bytes([198, 18, 0, 1])
B = bytes([198, 18, 0, 2])


def ip_packet(tcp: bytes, *, src: bytes = A, dst: bytes = B, **overrides: int) -> bytearray:
    fields = {"vihl": 0x45, "total": 20 + len(tcp), "frag": 0x4000, "proto": 6}
    fields.update(overrides)
    hdr = struct.pack(
        "!BBHHHBBH4s4s",
        fields["vihl"],
        0,
        fields["total"],
        1,
        fields["frag"],
        64,
        fields["proto"],
        0,
        src,
        dst,
    )
    return bytearray(hdr + tcp)


def tcp_bytes(**kw: object) -> bytes:
    seg = Segment(40000, 80, 1000, 2000, PSH | ACK, 512, payload=b"hello")
    for k, v in kw.items():
        setattr(seg, k, v)
    return encode(seg, A, B)


def parse(data: bytes | bytearray) -> Packet | DropReason:
    return parse_ipv4_tcp(memoryview(bytearray(data)))


def test_valid_packet_parses() -> None:
    pkt = parse(ip_packet(tcp_bytes()))
    assert isinstance(pkt, Packet)
    assert (pkt.src, pkt.dst) == (A, B)
    seg = pkt.segment
    assert (seg.src_port, seg.dst_port, seg.seq, seg.ack) == (40000, 80, 1000, 2000)
    assert bytes(seg.payload) == b"hello"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", DropReason.TRUNCATED_IP),
        (bytes(19), DropReason.TRUNCATED_IP),
        (ip_packet(tcp_bytes(), vihl=0x65), DropReason.BAD_IP_VERSION),
        (ip_packet(tcp_bytes(), vihl=0x44), DropReason.BAD_IP_HEADER_LENGTH),
        (ip_packet(tcp_bytes(), vihl=0x4F), DropReason.BAD_IP_HEADER_LENGTH),
        (ip_packet(tcp_bytes(), total=10), DropReason.BAD_IP_TOTAL_LENGTH),
        (ip_packet(tcp_bytes(), total=2000), DropReason.BAD_IP_TOTAL_LENGTH),
        (ip_packet(tcp_bytes(), frag=0x2000), DropReason.IP_FRAGMENT),
        (ip_packet(tcp_bytes(), frag=0x0010), DropReason.IP_FRAGMENT),
        (ip_packet(tcp_bytes(), proto=17), DropReason.NOT_TCP),
        (ip_packet(tcp_bytes(), src=bytes(4)), DropReason.BAD_ADDRESS),
        (ip_packet(tcp_bytes(), src=bytes([224, 0, 0, 1])), DropReason.BAD_ADDRESS),
        (ip_packet(tcp_bytes()[:19]), DropReason.TRUNCATED_TCP),
    ],
    ids=lambda v: v.value if isinstance(v, DropReason) else "",
)
def test_malformed_ip_is_rejected_with_reason(data: bytes, reason: DropReason) -> None:
    assert parse(data) == reason


def with_data_offset(tcp: bytes, words: int) -> bytes:
    b = bytearray(tcp)
    b[12] = (words << 4) | (b[12] & 0x0F)
    return bytes(b)


@pytest.mark.parametrize("words", [0, 1, 4])
def test_data_offset_below_five_words_is_rejected(words: int) -> None:
    assert parse(ip_packet(with_data_offset(tcp_bytes(), words))) == DropReason.BAD_DATA_OFFSET


def test_data_offset_past_the_segment_is_rejected() -> None:
    tcp = with_data_offset(tcp_bytes(payload=b""), 15)  # 60-byte header, 20 bytes present
    assert parse(ip_packet(tcp)) == DropReason.BAD_DATA_OFFSET


def test_bad_checksum_is_rejected() -> None:
    tcp = bytearray(tcp_bytes())
    tcp[16] ^= 0x01
    assert parse(ip_packet(bytes(tcp))) == DropReason.BAD_CHECKSUM


def test_flipped_payload_bit_fails_the_checksum() -> None:
    tcp = bytearray(tcp_bytes())
    tcp[-1] ^= 0x40
    assert parse(ip_packet(bytes(tcp))) == DropReason.BAD_CHECKSUM


def test_partial_checksum_seed_from_offloading_kernel_is_accepted() -> None:
    """veth/GRO leave the non-inverted pseudo-header sum in the field (CHECKSUM_PARTIAL)."""
    from aiotcp.core.checksum import pseudo_header_sum

    tcp = bytearray(tcp_bytes())
    seed = pseudo_header_sum(A, B, len(tcp))
    tcp[16:18] = seed.to_bytes(2, "big")
    assert isinstance(parse(ip_packet(bytes(tcp))), Packet)


def raw_tcp_with_options(options: bytes, payload: bytes = b"") -> bytes:
    """A TCP header with hand-written option bytes and a correct checksum."""
    from aiotcp.core.checksum import tcp_checksum

    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    b = bytearray(struct.pack("!HHIIBBHHH", 40000, 80, 1, 0, off << 4, SYN, 1000, 0, 0))
    b += options + payload
    csum = tcp_checksum(A, B, b)
    b[16:18] = csum.to_bytes(2, "big")
    return bytes(b)


@pytest.mark.parametrize(
    "options",
    [
        bytes([2, 0, 0, 0]),  # MSS with length 0
        bytes([2, 1, 0, 0]),  # length 1
        bytes([2, 8, 5, 0xB4]),  # runs past the header
        bytes([3, 2, 7, 1]),  # window scale with the wrong length
        bytes([1, 1, 1, 8]),  # kind without a length byte at the end
        bytes([8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),  # timestamps of length 12
        bytes([5, 3, 0, 0]),  # SACK length not 2 + 8n
        bytes([99, 0, 1, 1]),  # unknown kind, length 0
        bytes([99, 40, 1, 1]),  # unknown kind running past the header
    ],
)
def test_illegal_option_length_is_rejected(options: bytes) -> None:
    assert parse(ip_packet(raw_tcp_with_options(options))) == DropReason.BAD_OPTION_LENGTH


def test_unknown_option_is_skipped_and_known_ones_still_parsed() -> None:
    opts = bytes([99, 4, 0xAA, 0xBB, 2, 4, 0x05, 0xB4])
    pkt = parse(ip_packet(raw_tcp_with_options(opts)))
    assert isinstance(pkt, Packet)
    assert pkt.segment.mss == 1460
    assert pkt.segment.unknown_options == 1


def test_options_after_eol_are_ignored() -> None:
    opts = bytes([0, 2, 4, 0x05, 0xB4, 0, 0, 0])
    pkt = parse(ip_packet(raw_tcp_with_options(opts)))
    assert isinstance(pkt, Packet)
    assert pkt.segment.mss is None


def test_absurd_window_scale_is_clamped_to_14() -> None:
    """RFC 7323 §2.3: a shift above 14 is used as 14."""
    pkt = parse(ip_packet(raw_tcp_with_options(bytes([1, 3, 3, 200]))))
    assert isinstance(pkt, Packet)
    assert pkt.segment.wscale == 14


def test_zero_port_is_rejected() -> None:
    seg = Segment(0, 80, 1, 0, SYN, 100)
    assert parse(ip_packet(encode(seg, A, B))) == DropReason.BAD_PORT


def test_scapy_built_packet_parses_like_scapy_reads_it() -> None:
    """Cross-check the codec with an independent implementation."""
    opts = [("MSS", 1400), ("SAckOK", b""), ("Timestamp", (123, 0)), ("NOP", None), ("WScale", 7)]
    pkt = IP(src="198.18.0.1", dst="198.18.0.2") / TCP(
        sport=1234, dport=80, seq=0xFFFFFFF0, flags="S", window=29200, options=opts
    )
    parsed = parse(bytes(pkt))
    assert isinstance(parsed, Packet)
    seg = parsed.segment
    assert (seg.seq, seg.flags, seg.window) == (0xFFFFFFF0, SYN, 29200)
    assert (seg.mss, seg.sack_permitted, seg.ts_val, seg.ts_ecr, seg.wscale) == (
        1400,
        True,
        123,
        0,
        7,
    )


def test_scapy_validates_our_checksum_and_options() -> None:
    seg = Segment(
        1234,
        80,
        7,
        9,
        ACK,
        100,
        payload=b"x" * 33,
        ts_val=5,
        ts_ecr=6,
        sack_blocks=((100, 200), (300, 400)),
    )
    parsed = IP(bytes(ip_packet(encode(seg, A, B))))
    ours = parsed[TCP].chksum
    del parsed[TCP].chksum
    assert IP(bytes(parsed))[TCP].chksum == ours
    options = dict(parsed[TCP].options)
    assert options["Timestamp"] == (5, 6)
    assert options["SAck"] == (100, 200, 300, 400)


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=120))
def test_random_bytes_never_raise(data: bytes) -> None:
    result = parse(data)
    assert isinstance(result, (Packet, DropReason))


@settings(max_examples=2000, deadline=None)
@given(st.binary(min_size=0, max_size=40), st.binary(max_size=64))
def test_random_options_on_a_valid_header_never_raise(options: bytes, payload: bytes) -> None:
    padded = options + bytes(-len(options) % 4)
    result = parse(ip_packet(raw_tcp_with_options(padded, payload)))
    assert isinstance(result, (Packet, DropReason))
    assert result != DropReason.BAD_CHECKSUM


def with_seed_in_the_field(tcp: bytes) -> bytearray:
    from aiotcp.core.checksum import pseudo_header_sum

    out = bytearray(tcp)
    out[16:18] = pseudo_header_sum(A, B, len(out)).to_bytes(2, "big")
    return out


def test_a_wire_trusts_a_partial_checksum_only_on_a_gro_aggregate() -> None:
    """``partial_above`` is the wire's MTU: a datagram no longer than that is one
    wire packet and its seed-valued field is verified (and fails); a longer one is
    a GRO aggregate, which the kernel verified segment by segment."""
    small = ip_packet(bytes(with_seed_in_the_field(tcp_bytes())))
    assert isinstance(parse_ipv4_tcp(memoryview(small), partial_above=0), Packet)
    assert parse_ipv4_tcp(memoryview(small), partial_above=1500) == DropReason.BAD_CHECKSUM
    big = ip_packet(bytes(with_seed_in_the_field(tcp_bytes(payload=bytes(3000)))))
    assert isinstance(parse_ipv4_tcp(memoryview(big), partial_above=1500), Packet)


def test_a_real_checksum_equal_to_the_seed_passes_on_a_wire() -> None:
    """One valid segment in 65,536 has the seed as its true checksum: verified in
    full, it passes."""
    from aiotcp.core.checksum import ones_sum

    tcp = with_seed_in_the_field(tcp_bytes(payload=b"hello!\0\0"))
    seed = int.from_bytes(tcp[16:18], "big")
    # Choose the last payload word so the whole sum, seed field included, is 0xFFFF.
    word = (0xFFFF - ones_sum(bytes(tcp)) - seed) % 0xFFFF
    tcp[-2:] = word.to_bytes(2, "big")
    parsed = parse_ipv4_tcp(memoryview(ip_packet(bytes(tcp))), partial_above=1500)
    assert isinstance(parsed, Packet)
