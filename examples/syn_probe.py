"""Half-open port probe with aiotcp's raw socket layer: SYN, read the answer, RST.

For each port: a SYN-ACK means a listener (aiotcp then aborts with its own RST,
which the guard lets out while it drops the kernel's); a RST means closed; silence
means filtered.  Shows the packet-level API that later layers are built on.

    sudo python examples/syn_probe.py 198.18.0.2 7 22 8080
"""

from __future__ import annotations

import argparse
import secrets

from aiotcp.core.segment import ACK, RST, SYN, Segment
from aiotcp.io import route
from aiotcp.io.guards import make_guard
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.scripted import ScriptedEndpoint


def probe(raw: RawSocket, local: tuple[str, int], remote: tuple[str, int], timeout: float) -> str:
    ep = ScriptedEndpoint(raw, local, remote)
    isn = secrets.randbits(32)
    ep.send(Segment(seq=isn, flags=SYN, window=64240, mss=1460))
    answer = ep.expect(lambda s: bool(s.flags & (SYN | RST)), timeout)
    if answer is None:
        return "filtered (no answer)"
    if answer.flags & RST:
        return "closed (RST)"
    ep.send(Segment(seq=(isn + 1) & 0xFFFFFFFF, ack=(answer.seq + 1) & 0xFFFFFFFF, flags=RST | ACK))
    return f"open (SYN-ACK, peer ISN {answer.seq}, MSS {answer.mss})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("ports", type=int, nargs="+")
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    dst = route.resolve(args.host)
    src = route.lookup(dst).source
    with make_guard("iptables") as guard, RawSocket() as raw:
        for port in args.ports:
            local_port = guard.claim()
            raw.set_port_ranges(guard.port_ranges())
            print(f"{dst}:{port} {probe(raw, (src, local_port), (dst, port), args.timeout)}")
            guard.release(local_port)


if __name__ == "__main__":
    main()
