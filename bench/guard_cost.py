"""What it costs to own one more port, per guard (the price of each new connection).

- iptables guard: the port comes from the range one rule already covers, so a
  claim is a kernel ``bind`` for the reservation.
- socket guard: ``bind`` + attach a drop-all BPF filter + ``listen``.
- for comparison, what a rule per port would cost: one ``iptables -A`` and one
  ``iptables -D`` process per connection.

    .venv/bin/python bench/guard_cost.py [--ports 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from aiotcp.io.guards import make_guard
from aiotcp.io.iptables_guard import iptables
from aiotcp.testing.netns import two_hosts


def per_port_us(kind: str, n: int) -> dict[str, float]:
    guard = make_guard(kind)  # type: ignore[arg-type]
    guard.install()
    try:
        t0 = time.perf_counter()
        ports = [guard.claim() for _ in range(n)]
        t1 = time.perf_counter()
        for p in ports:
            guard.release(p)
        t2 = time.perf_counter()
    finally:
        guard.close()
    return {"claim_us": (t1 - t0) / n * 1e6, "release_us": (t2 - t1) / n * 1e6, "ports": n}


def rule_per_port_us(n: int) -> dict[str, float]:
    rule = ["OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "DROP", "--sport"]
    t0 = time.perf_counter()
    for i in range(n):
        iptables("-A", *rule, str(40000 + i))
    t1 = time.perf_counter()
    for i in range(n):
        iptables("-D", *rule, str(40000 + i))
    t2 = time.perf_counter()
    return {"claim_us": (t1 - t0) / n * 1e6, "release_us": (t2 - t1) / n * 1e6, "ports": n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=2000)
    args = parser.parse_args()
    with two_hosts("bench") as (a, _b), a.entered():
        results = {
            "iptables_guard": per_port_us("iptables", args.ports),
            "socket_guard": per_port_us("socket", args.ports),
            "iptables_rule_per_port": rule_per_port_us(min(args.ports, 100)),
        }
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
