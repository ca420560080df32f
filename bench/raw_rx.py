"""Raw-socket receive rate with the BPF port filter on and off.

Host B's kernel sends bulk data to a kernel sink on host A (port 5001, not
aiotcp's).  Meanwhile aiotcp's raw socket on A drains everything it is given:
with the filter off it is woken for every one of those packets; with the filter
on (aiotcp's ports only) it should see none of them.  The "off" run is also the
receive capacity of the raw socket + parser in Python on this machine.

    .venv/bin/python bench/raw_rx.py [--seconds 3] [--no-offload]
"""

from __future__ import annotations

import argparse
import json
import select
import subprocess
import sys
import time

from aiotcp.io.guards import make_guard
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.netns import Host, kernel_sink, two_hosts

SENDER = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], 5001))
buf = bytes(1 << 20)
end = time.monotonic() + float(sys.argv[2])
n = 0
while time.monotonic() < end:
    s.sendall(buf); n += len(buf)
s.close()
print(n)
"""


def drain(
    host: Host, peer: Host, seconds: float, ranges: list[tuple[int, int]]
) -> dict[str, float]:
    with host.entered():
        raw = RawSocket(port_ranges=ranges, verify_checksum=True)
    sender = peer.python(
        ["-c", SENDER, host.address, str(seconds)], stdout=subprocess.PIPE, text=True
    )
    cpu0, t0 = time.process_time(), time.monotonic()
    end = t0 + seconds + 0.5
    while time.monotonic() < end:
        r, _, _ = select.select([raw], [], [], 0.1)
        if r:
            raw.recv_batch()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - t0
    out, _ = sender.communicate(timeout=30)
    raw.close()
    c = raw.counters
    return {
        "kernel_bytes_sent": int(out.strip() or 0),
        "raw_packets": c["rx_packets"],
        "raw_mbytes": c["rx_bytes"] / 1e6,
        "raw_packets_per_s": c["rx_packets"] / wall,
        "raw_mbytes_per_s": c["rx_bytes"] / 1e6 / wall,
        "bad_checksum": c["drop_bad_checksum"],
        "cpu_seconds": cpu,
        "wall_seconds": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--no-offload", action="store_true", help="TSO/GSO/GRO off: wire-sized packets"
    )
    args = parser.parse_args()
    results = {}
    hosts = two_hosts("bench", offload=not args.no_offload)
    with hosts as (a, b), kernel_sink(a, 5001):
        with a.entered():
            guard = make_guard("iptables")
            guard.install()
            guard.claim()
            owned = guard.port_ranges()
        try:
            results["filter_off"] = drain(a, b, args.seconds, [(0, 65535)])
            results["filter_on"] = drain(a, b, args.seconds, owned)
        finally:
            with a.entered():
                guard.close()
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
