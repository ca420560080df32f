"""The C delay impairer (``aiotcp.testing.fastimpair``): the delay it is asked for is
the delay a connection sees, bytes arrive intact through it, loss is per packet, and
it leaves no process, rule or namespace behind.

Hosts keep their offloads on (as bench/congestion.py builds them), so with
``gso=True`` the helper really gets 64 KB aggregates.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator

import pytest

from aiotcp.testing.fastimpair import fast_impair, unavailable_reason
from aiotcp.testing.impair import Impairment
from aiotcp.testing.netns import (
    Host,
    kernel_sink,
    list_netns,
    pattern,
    ping,
    require_root,
    two_hosts,
)

pytestmark = pytest.mark.root

PREFIX = "fi"
PORT = 7100
DELAY = 0.030
SLACK = 0.020
"""Scheduling latency allowed on top of the delay (the suite runs on 2 busy CPUs)."""


@pytest.fixture(autouse=True)
def helper_available() -> None:
    """Root and a buildable helper; in CI a missing compiler or header is a failure
    (``.ci/setup`` installs both), elsewhere a skip that says what to install."""
    require_root()
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but the fast impairer cannot be built: {reason}", pytrace=False)
    pytest.skip(f"fast impairer unavailable: {reason}")


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    with two_hosts(PREFIX, ipv6=True) as pair:
        yield pair


def handshake_seconds(a: Host, addr: str) -> float:
    """Best of three TCP connects from A to B's listener on ``PORT + 1`` (SYN →
    SYN-ACK → ACK; the kernel completes them without an accept)."""
    best = float("inf")
    for _ in range(3):
        start = time.monotonic()
        a.connect(addr, PORT + 1).close()
        best = min(best, time.monotonic() - start)
    return best


def assert_no_leftovers(imp: Impairment, hosts: tuple[Host, Host]) -> None:
    """The helper has exited and no NFQUEUE rule is left, in either family."""
    with pytest.raises(ProcessLookupError):
        os.kill(imp.pid, 0)
    for host in hosts:
        for command in ("iptables", "ip6tables"):
            rules = host.run([command, "-w", "-t", "mangle", "-S"]).stdout
            assert "NFQUEUE" not in rules


@pytest.mark.parametrize("gso", [True, False], ids=["gso", "per-segment"])
def test_delay_is_applied_and_bytes_arrive_intact(hosts: tuple[Host, Host], gso: bool) -> None:
    """B's input delayed 30 ms: ping (both families) and the TCP handshake take
    30 ms more, and 8 MB pass byte-exact."""
    a, b = hosts
    assert a.address6 is not None and b.address6 is not None
    data = pattern(8_000_000, seed=3)
    with kernel_sink(b, PORT) as sink, b.listen(PORT + 1):
        with fast_impair(b, delay=DELAY, gso=gso) as imp:
            rtt4 = ping(a, b.address, count=5, interval=0.01, timeout=1.0)
            rtt6 = ping(a, b.address6, count=5, interval=0.01, timeout=1.0)
            shake = handshake_seconds(a, b.address)
            conn = a.connect(b.address, PORT)
            with conn:
                conn.sendall(data)
                conn.shutdown(socket.SHUT_WR)
                count, digest = sink.read_result()
    for rtt in (rtt4, rtt6):
        assert rtt.received == rtt.sent == 5
        assert DELAY <= rtt.median_rtt < DELAY + SLACK, rtt.rtts
    assert DELAY <= shake < DELAY + SLACK  # the SYN waits; the SYN-ACK does not
    assert (count, digest) == (len(data), hashlib.sha256(data).hexdigest())
    assert imp.helper == "c"
    assert imp.stats.seen > 0 and imp.stats.delayed == imp.stats.seen
    assert imp.stats.dropped == 0
    assert imp.counters["enobufs"] == 0
    if gso:  # 8 MB in 64 KB aggregates: far fewer packets than wire segments
        assert imp.stats.seen < len(data) // 1448
    else:
        assert imp.stats.seen > len(data) // 1448
    assert_no_leftovers(imp, hosts)


def test_both_directions_double_the_round_trip(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    # IPv4 ICMP only: B's IPv6 multicast listener reports would add to the count.
    with fast_impair(b, delay=DELAY / 2, direction="both", proto="icmp") as imp:
        rtt = ping(a, b.address, count=5, interval=0.01, timeout=1.0)
    assert rtt.received == 5
    assert DELAY <= rtt.median_rtt < DELAY + SLACK, rtt.rtts
    assert imp.stats.seen == 10  # five requests in, five replies out


def test_loss_is_per_packet_and_seeded(hosts: tuple[Host, Host]) -> None:
    """40 pings through 50 % loss: what the helper dropped is what ping missed, and
    the same seed drops the same requests."""
    a, b = hosts
    outcomes = []
    for _ in range(2):
        with fast_impair(b, delay=0.001, loss=0.5, seed=7, proto="icmp") as imp:
            result = ping(a, b.address, count=40, interval=0.002, timeout=0.2)
        assert imp.stats.seen == 40
        assert 0 < imp.stats.dropped < 40
        assert result.received == 40 - imp.stats.dropped
        outcomes.append(imp.stats.dropped)
    assert outcomes[0] == outcomes[1]


def test_gso_with_loss_is_refused(hosts: tuple[Host, Host]) -> None:
    _, b = hosts
    with pytest.raises(ValueError, match="whole aggregates"), fast_impair(b, loss=0.1, gso=True):
        pass


def test_everything_is_cleaned_up() -> None:
    """Rules and helper go with the block, the namespaces with ``two_hosts``, even
    when the block raises."""
    with pytest.raises(RuntimeError, match="boom"), two_hosts(PREFIX) as (a, b):
        netns = [a.netns, b.netns]
        assert all(ns in list_netns(PREFIX) for ns in netns)
        with fast_impair(b, delay=0.01, direction="both") as imp:
            raise RuntimeError("boom")
    assert_no_leftovers_after_netns(imp)
    assert not set(netns) & set(list_netns(PREFIX))


def assert_no_leftovers_after_netns(imp: Impairment) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(imp.pid, 0)
