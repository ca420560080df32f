"""What the sans-IO core alone costs per 64 KB, with no sockets and no event loop.

The floor under the stack's bulk throughput: every byte aiotcp sends or receives
pays at least this much Python in ``aiotcp.core``, before any syscall, asyncio
callback or stream copy.  Both loops drive one established connection directly:

- send: the application writes 64 KiB, the peer acknowledges everything sent so
  far (one cumulative ACK, as a kernel receiver with GRO sends), the connection
  emits its super-segments (``gso_max`` as the AF_PACKET path sets it);
- receive: one 65,160-byte in-order segment (what GRO hands a raw socket on
  veth) arrives, the application reads, the connection emits its ACK;
- hole: a window of 2,000 wire-sized segments arrives behind one lost segment
  (each answered by a SACK), then the retransmission fills the hole and the
  application reads the lot: the cost per segment of a loss on a fast path,
  which must not grow with the window;
- sack: the sender's side of that: a window of 2,000 segments is in flight (sent
  two at a time, as an ACK clock or pacing sends them), the first is lost, and an
  ACK per later segment extends one SACK block (what a kernel receiver sends);
  the cost per ACK, which must not grow with the window either.

    .venv/bin/python bench/core_cost.py [--rounds 20000]

No root needed; prints microseconds per 64 KB and the MB/s that alone would allow.
"""

from __future__ import annotations

import argparse
import time

from aiotcp.core.connection import Connection
from aiotcp.core.options import TcpOptions
from aiotcp.core.segment import ACK, Segment
from aiotcp.core.seq import seq_add
from aiotcp.egress import GSO_MAX_PAYLOAD
from aiotcp.testing.corekit import LOCAL, REMOTE, R, established

BLOCK = 1 << 16
GRO_SEGMENT = 45 * 1448


def connection(options: TcpOptions, sack: bool = False) -> Connection:
    t = established(options, mss=1460, window=65535, wscale=7, sack_permitted=sack)
    return t.conn


def send_cost(rounds: int) -> float:
    conn = connection(TcpOptions(nodelay=True))
    conn.gso_max = GSO_MAX_PAYLOAD
    block = bytes(BLOCK)
    now = 1.0
    t0 = time.perf_counter()
    for i in range(rounds):
        now += 1e-4
        conn.send(block)
        ts = conn._ts_now(now) if conn.ts_ok else None
        ack = Segment(
            REMOTE[1], LOCAL[1], R(1), conn.snd_nxt, ACK, 65535, 0, b"", ts_val=i, ts_ecr=ts
        )
        conn.receive(ack, now)
        conn.segments_to_send(now)
        while conn.next_event() is not None:
            pass
    return (time.perf_counter() - t0) / rounds


def receive_cost(rounds: int) -> float:
    conn = connection(TcpOptions())
    payload = memoryview(bytes(GRO_SEGMENT))
    seq = R(1)
    now = 1.0
    t0 = time.perf_counter()
    for i in range(rounds):
        now += 1e-4
        seg = Segment(REMOTE[1], LOCAL[1], seq, conn.snd_nxt, ACK, 65535, 0, payload, ts_val=i)
        conn.receive(seg, now)
        conn.read()
        conn.segments_to_send(now)
        while conn.next_event() is not None:
            pass
        seq = (seq + GRO_SEGMENT) & 0xFFFFFFFF
    return (time.perf_counter() - t0) / rounds * BLOCK / GRO_SEGMENT


WIRE_SEGMENT = 1448
HOLE_WINDOW = 2000


def hole_cost(rounds: int) -> float:
    """Seconds per wire segment of a window received behind a hole."""
    conn = connection(TcpOptions(recv_buffer=8 << 20))
    payload = memoryview(bytes(WIRE_SEGMENT))
    seq = R(1)
    now = 1.0
    windows = max(rounds // 1000, 3)
    t0 = time.perf_counter()
    for _ in range(windows):
        for k in [*range(1, HOLE_WINDOW), 0]:  # the first segment comes last
            now += 1e-5
            at = (seq + k * WIRE_SEGMENT) & 0xFFFFFFFF
            conn.receive(
                Segment(REMOTE[1], LOCAL[1], at, conn.snd_nxt, ACK, 65535, 0, payload), now
            )
            conn.segments_to_send(now)
        while conn.next_event() is not None:
            pass
        conn.read()
        conn.segments_to_send(now)
        seq = (seq + HOLE_WINDOW * WIRE_SEGMENT) & 0xFFFFFFFF
    return (time.perf_counter() - t0) / (windows * HOLE_WINDOW)


def sack_cost(rounds: int) -> float:
    """Seconds per ACK of a window SACKed behind one lost segment."""
    windows = max(rounds // 1000, 3)
    total = 0.0
    for _ in range(windows):
        conn = connection(TcpOptions(nodelay=True), sack=True)
        conn.cc.cwnd = 1 << 40  # the window is the sender's, not cwnd's
        now = 1.0
        pair = bytes(2 * WIRE_SEGMENT)
        for _ in range(HOLE_WINDOW // 2):  # two segments per send, as paced or ACK-clocked
            now += 1e-6
            conn.send(pair)
            conn.segments_to_send(now)
        una = conn.snd_una
        t0 = time.perf_counter()
        for k in range(2, HOLE_WINDOW + 1):
            now += 1e-5
            blocks = ((seq_add(una, WIRE_SEGMENT), seq_add(una, k * WIRE_SEGMENT)),)
            ack = Segment(REMOTE[1], LOCAL[1], R(1), una, ACK, 65535, 0, b"", sack_blocks=blocks)
            conn.receive(ack, now)
            conn.segments_to_send(now)
        total += time.perf_counter() - t0
    return total / (windows * (HOLE_WINDOW - 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()
    for name, cost in (("send", send_cost), ("receive", receive_cost)):
        seconds = min(cost(args.rounds) for _ in range(3))
        print(
            f"core {name}: {seconds * 1e6:6.1f} µs per 64 KB -> {BLOCK / seconds / 1e6:7.0f} MB/s"
        )
    seconds = min(hole_cost(args.rounds) for _ in range(3))
    print(
        f"core hole: {seconds * 1e6:6.1f} µs per {WIRE_SEGMENT}-byte segment behind a hole"
        f" ({HOLE_WINDOW} per window) -> {WIRE_SEGMENT / seconds / 1e6:7.0f} MB/s"
    )
    seconds = min(sack_cost(args.rounds) for _ in range(3))
    print(
        f"core sack: {seconds * 1e6:6.1f} µs per ACK extending a SACK block behind a hole"
        f" ({HOLE_WINDOW} segments in flight)"
    )


if __name__ == "__main__":
    main()
