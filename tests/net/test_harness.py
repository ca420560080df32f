"""The test harness itself: namespaces, kernel peers, captures, impairment, cleanup.

Every other packet-level test trusts these pieces, so each one is shown to work *and*
to be able to fail (a blocked link really blocks, a capture really sees flags).
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
from pathlib import Path

import pytest

from aiotcp.testing import netns
from aiotcp.testing.capture import capture, flags_str
from aiotcp.testing.impair import impair, iptables_drop
from aiotcp.testing.netns import (
    Host,
    cleanup_stale,
    kernel_echo_server,
    kernel_sink,
    kernel_source,
    list_netns,
    pattern,
    ping,
    steer_receive,
    two_hosts,
)

PORT = 7000


def _netns_inode() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _ns_pids(host: Host) -> list[str]:
    out = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True)
    return out.stdout.split()


def _mangle_rules(host: Host) -> list[str]:
    """The host's mangle rules, IPv6's too (``impair`` adds to both tables)."""
    return [
        r
        for command in ("iptables", "ip6tables")
        for r in host.run([command, "-t", "mangle", "-S"]).stdout.splitlines()
        if r.startswith("-A")
    ]


def absent(family: str) -> str:
    """An address on the test link that no host has."""
    return "198.18.0.99" if family == "ipv4" else "fd00:198:18::99"


# ------------------------------------------------------------------ namespaces


def test_hosts_ping_each_other(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    assert (a.address, a.peer) == ("198.18.0.1", "198.18.0.2")
    if family == "ipv6":
        assert (a.address6, a.peer6) == ("fd00:198:18::1", "fd00:198:18::2")
        assert b.peer6 == a.address6
    assert ping(a, b.address_of(family), count=5, interval=0.005).received == 5
    assert ping(b, a.address_of(family), count=5, interval=0.005).received == 5


def test_ping_to_absent_address_fails(family_hosts: tuple[Host, Host], family: str) -> None:
    a, _ = family_hosts
    assert ping(a, absent(family), count=2, interval=0.01, timeout=0.3).received == 0


def test_entered_switches_netns_and_restores(hosts: tuple[Host, Host]) -> None:
    a, b = hosts
    outside = _netns_inode()
    with a.entered():
        inside = _netns_inode()
        names = [name for _, name in socket.if_nameindex()]
        child = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with udp:
        assert inside != outside and _netns_inode() == outside
        assert a.ifname in names and b.ifname not in names
        assert a.ifname in child, "a subprocess forked inside must inherit the netns"
        assert a.ifname not in [name for _, name in socket.if_nameindex()]
        udp.bind((a.address, 0))  # the address exists only in A: the socket stayed there
    with pytest.raises(ZeroDivisionError), b.entered():
        1 / 0  # noqa: B018
    assert _netns_inode() == outside


def test_call_returns_and_raises(hosts: tuple[Host, Host]) -> None:
    a, _ = hosts
    assert a.call(lambda: [n for _, n in socket.if_nameindex()]) == ["lo", a.ifname]
    with pytest.raises(KeyError):
        a.call({}.__getitem__, "missing")


def test_cleanup_stale_removes_only_dead_runs() -> None:
    netns.require_root()
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale, live = f"at-{dead.pid}-0-dead-a", f"at-{os.getpid()}-0-live-a"
    try:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "add", name], check=True)
        removed = cleanup_stale("at")
        assert stale in removed and live not in removed
        assert live in list_netns("at-") and stale not in list_netns("at-")
    finally:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def test_require_root_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        netns.require_root()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        netns.require_root()


# ---------------------------------------------------------------- kernel peers


def test_kernel_echo_server_answers_client(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    with kernel_echo_server(b, PORT), a.connect(b.address_of(family), PORT) as sock:
        netns.wait_listening(b, PORT, timeout=1.0)
        sock.sendall(b"ping through the veth")
        assert sock.recv(100) == b"ping through the veth"
    assert not netns.is_listening(b, PORT)


def test_kernel_sink_and_source_move_exact_bytes(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    peer = b.address_of(family)
    data = pattern(300_000)
    with kernel_sink(b, PORT) as sink:
        with a.connect(peer, PORT) as sock:
            sock.sendall(data)
        assert sink.read_result() == (len(data), hashlib.sha256(data).hexdigest())
    with kernel_source(b, PORT + 1, 300_000), a.connect(peer, PORT + 1) as sock:
        got = b"".join(iter(lambda: sock.recv(65536), b""))
    assert got == data


def _rps_mask(host: Host) -> int:
    path = f"/sys/class/net/{host.ifname}/queues/rx-0/rps_cpus"
    return int(host.run(["cat", path]).stdout.strip().replace(",", ""), 16)


def test_steer_receive_sets_each_hosts_queue_and_traffic_still_flows(
    hosts: tuple[Host, Host],
) -> None:
    a, b = hosts
    cpus = sorted(os.sched_getaffinity(0))
    cpu_a, cpu_b = cpus[0], cpus[-1]
    assert _rps_mask(a) == _rps_mask(b) == 0  # a new veth steers nothing
    steer_receive(a, cpu_a)
    steer_receive(b, cpu_b)
    assert (_rps_mask(a), _rps_mask(b)) == (1 << cpu_a, 1 << cpu_b)
    data = pattern(2_000_000)
    with kernel_sink(b, PORT) as sink:
        with a.connect(b.address, PORT) as sock:
            sock.sendall(data)
        assert sink.read_result() == (len(data), hashlib.sha256(data).hexdigest())


# --------------------------------------------------------------------- capture


def test_flags_str_matches_tcpdump() -> None:
    assert [flags_str(f) for f in (0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0)] == [
        "S", "S.", ".", "P.", "F.", "R", "R.", "none",
    ]  # fmt: skip


def test_capture_sees_kernel_handshake(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    with (
        kernel_echo_server(b, PORT),
        capture(b, f"tcp port {PORT}") as cap,
        a.connect(b.address_of(family), PORT) as sock,
    ):
        sock.sendall(b"x")
        assert sock.recv(10) == b"x"
    assert cap.kernel_drops == 0
    syn, synack, ack = cap.segments(PORT)[:3]
    assert (syn.flags, synack.flags, ack.flags) == ("S", "S.", ".")
    assert (syn.src, syn.dst, syn.dport) == (a.address_of(family), b.address_of(family), PORT)
    assert synack.ack == (syn.seq + 1) % 2**32 and ack.ack == (synack.seq + 1) % 2**32
    assert ack.seq == syn.seq + 1 and ack.len == 0
    assert any(s.flags == "P." and s.len == 1 for s in cap.segments(PORT))


def test_capture_with_bad_filter_fails_loudly(hosts: tuple[Host, Host]) -> None:
    _, b = hosts
    with pytest.raises(RuntimeError, match="tcpdump did not start"), capture(b, "tcp port ((("):
        pass
    assert _ns_pids(b) == []


# ------------------------------------------------------------------ impairment


def test_full_loss_blocks_connect_and_zero_loss_passes(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    peer = b.address_of(family)
    with kernel_echo_server(b, PORT):
        with impair(b, loss=1.0, proto="tcp") as imp, pytest.raises(TimeoutError):
            a.connect(peer, PORT, timeout=0.5)
        assert imp.stats.seen >= 1 and imp.stats.dropped == imp.stats.seen
        with impair(b, loss=0.0, proto="tcp"), a.connect(peer, PORT, timeout=2) as sock:
            sock.sendall(b"ok")
            assert sock.recv(10) == b"ok"


def test_delay_raises_rtt(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    base = ping(a, b.address_of(family), count=10, interval=0.005)
    with impair(b, delay=0.020):
        slow = ping(a, b.address_of(family), count=10, interval=0.005, timeout=1.0)
    assert base.received == slow.received == 10
    assert base.median_rtt < 0.010
    assert min(slow.rtts) >= 0.019  # a deferred verdict never fires early


def test_loss_rate_is_seeded_and_near_configured(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    runs = []
    for _ in range(2):
        with impair(b, loss=0.2, seed=7) as imp:
            result = ping(a, b.address_of(family), count=300, interval=0.001, timeout=0.3)
        assert imp.stats.dropped == result.sent - result.received
        runs.append(imp.stats.dropped)
    assert runs[0] == runs[1], "same seed, same traffic: same drops"
    assert 0.10 < runs[0] / 300 < 0.30


def test_jitter_reorders_packets(family_hosts: tuple[Host, Host], family: str) -> None:
    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import ICMPv6EchoReply

    a, b = family_hosts
    # Echo replies only (the IPv6 one: next header ICMPv6, type 129, no extension).
    replies = "icmp[icmptype] == icmp-echoreply" if family == "ipv4" else "icmp6 and ip6[40] == 129"
    with capture(a, replies) as cap, impair(b, delay=0.010, jitter=0.009, seed=3):
        assert ping(a, b.address_of(family), count=60, interval=0.001, timeout=0.5).received == 60
    layer = ICMP if family == "ipv4" else ICMPv6EchoReply
    order = [int(p[layer].seq) for p in cap.packets]
    assert sorted(order) == list(range(60)) and order != sorted(order)


def test_duplication_shows_in_capture(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    with (
        kernel_echo_server(b, PORT),
        capture(b, f"tcp port {PORT}") as cap,
        impair(a, dup=1.0, direction="out", proto="tcp") as imp,
        a.connect(b.address_of(family), PORT) as sock,
    ):
        sock.sendall(b"twice")
        assert sock.recv(10) == b"twice"
    syns = [s for s in cap.segments(PORT) if s.flags == "S"]
    assert len(syns) == 2 and syns[0].seq == syns[1].seq
    assert imp.stats.duplicated == imp.stats.seen >= 4


def test_iptables_nth_drop_is_exact(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    with iptables_drop(b, every=4):
        result = ping(a, b.address_of(family), count=40, interval=0.001, timeout=0.3)
    assert result.received == 30
    assert _mangle_rules(b) == []


# --------------------------------------------------------------------- cleanup


def test_nothing_left_after_contexts_exit(family: str) -> None:
    netns.require_root()
    with two_hosts(ipv6=family == "ipv6") as (a, b):
        with kernel_echo_server(b, PORT) as server:
            with impair(b, delay=0.001) as imp, capture(b) as cap:
                assert any("NFQUEUE" in r for r in _mangle_rules(b))
                assert {str(imp.pid), str(cap.pid)} <= set(_ns_pids(b))
            assert _mangle_rules(b) == []
            assert not _alive(imp.pid) and not _alive(cap.pid)
            assert _ns_pids(b) == [str(server.proc.pid)]
        assert _ns_pids(b) == [] and not _alive(server.proc.pid)
        names = (a.netns, b.netns)
        leftover = b.python(["-c", "import time; time.sleep(60)"])
    assert not any(n in list_netns("at-") for n in names)
    assert not _alive(leftover.pid)


def test_teardown_runs_when_the_test_body_fails() -> None:
    netns.require_root()
    names: list[str] = []
    with pytest.raises(RuntimeError), two_hosts() as (a, b), impair(b, loss=0.5):
        names += [a.netns, b.netns]
        raise RuntimeError("test body failed")
    assert names and not any(n in list_netns("at-") for n in names)
