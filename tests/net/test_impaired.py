"""Transfers over impaired links (issue 6): loss, reordering, duplication, outages,
over IPv4 and IPv6.

aiotcp runs in host A on the test thread; the kernel peer runs in host B.

Where the impairment sits. Each direction of the link is impaired once, on arrival:
one helper on B's INPUT hook (aiotcp's data and ACKs) and one on A's INPUT hook (the
kernel's data and ACKs). Not on B's output: a kernel sender whose own packets wait
in an NFQUEUE is throttled by its own stack (the held packets still count against
the socket, TCP Small Queues), measured at ~1 MB/s kernel→kernel for profile A, so
the "down" direction would measure that rather than aiotcp. A's INPUT is safe for
aiotcp's receive path: it receives on an IPPROTO_TCP raw socket, which the kernel
serves after INPUT (``impair.py``'s warning is about AF_PACKET, which aiotcp only
uses to send; the tests check that the kernel really had losses to repair).

The hosts are built with offloads off: with TSO/GSO on, the kernel hands netfilter
64 KB super-packets, and "5 % loss" would drop 44 segments at a time. Offloads off
means every decision (drop, delay, copy) is about one wire segment.

Each test prints one line per measurement (``pytest -s`` shows them): goodput,
aiotcp's counters, the helpers' stats and the kernel peer's own counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import aiotcp
from aiotcp.testing.impair import (
    Direction,
    Impairment,
    ImpairStats,
    impair,
    iptables_drop,
    tables,
)
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import (
    Host,
    kernel_sink,
    kernel_source,
    pattern,
    require_root,
    sysctl,
    two_hosts,
)
from aiotcp.testing.transfer import (
    TransferResult,
    arrival_recorder,
    kernel_tcp_stats,
    receive_bulk,
    reorder_stats,
    send_bulk,
    stats_delta,
)

pytestmark = pytest.mark.root

PORT = 7000
MB = 1_000_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def wire(family: str) -> Iterator[tuple[Host, Host]]:
    """Hosts A and B with TSO/GSO/GRO off, so impairment acts on wire segments; with
    IPv6 addresses too when ``family`` is IPv6."""
    require_root()
    with two_hosts("imp", offload=False, ipv6=family == "ipv6") as pair:
        yield pair


def kernel_rto_min(host: Host, value: str, family: str) -> None:
    """Lower the kernel's RTO floor on ``host``'s link route in ``family``
    (``ip route ... rto_min``)."""
    if family == "ipv6":
        subnet = str(ipaddress.ip_interface(f"{host.address6}/64").network)
        route = ["dev", host.ifname, "proto", "kernel", "metric", "256"]
        host.run(["ip", "-6", "route", "change", subnet, *route, "rto_min", value])
        return
    subnet = f"{host.address.rsplit('.', 1)[0]}.0/{host.prefixlen}"
    route = ["dev", host.ifname, "proto", "kernel", "scope", "link", "src", host.address]
    host.run(["ip", "route", "change", subnet, *route, "rto_min", value])


def report(test: str, result: TransferResult, **extra: Any) -> None:
    print(f"\n[impaired] {test}: {result.summary()}")
    for key, value in extra.items():
        print(f"[impaired] {test}:   {key}: {value}")


# ------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class Profile:
    name: str
    size: int
    loss: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    seed: int = 6
    tcp_options: dict[str, Any] = field(default_factory=dict)
    kernel_rto_min: str | None = None
    timeout: float = 120.0

    def impair(
        self, host: Host, seed: int, direction: Direction = "in"
    ) -> contextlib.AbstractContextManager[Impairment]:
        """This profile on packets arriving at ``host`` (its INPUT hook), or leaving
        it (``direction="out"``)."""
        return impair(
            host,
            loss=self.loss,
            delay=self.delay,
            jitter=self.jitter,
            dup=self.dup,
            reorder=self.reorder,
            seed=seed,
            direction=direction,
        )


PROFILES = {
    # 5 % loss, 5 ms ± 2 ms each way, 10 % reordering, 2 % copies. Jitter alone
    # reordered ~60 % of the kernel's segments (it sends back-to-back bursts, and
    # any uniform jitter shuffles whole bursts), so the jitter keeps the order and
    # the helper holds back 10 % of the packets 2 ms more (``reorder``): measured
    # as aiotcp receives them (RFC 4737, by IP ID), ~10 % arrive reordered.
    # RTT ≈ 12 ms: an RTO floor of 30 ms on both ends instead of Linux's 200 ms
    # (``ip route ... rto_min``), or the upload takes 6 times as long. 5 MB (some
    # 3,500 segments each way, per loop and family): rates and reordering are
    # still measured to within a few per cent.
    "A": Profile(
        "A",
        5 * MB,
        loss=0.05,
        delay=0.005,
        jitter=0.002,
        dup=0.02,
        reorder=0.10,
        tcp_options={"rto_min": 0.03},
        kernel_rto_min="30ms",
        timeout=200.0,
    ),
    # 20 % loss each way, with profile A's 30 ms RTO floor on both ends: at this
    # loss the whole flight (retransmissions and probes included) is often lost and
    # only an RTO helps, so Linux's 200 ms floor would make the upload take ~45 s
    # per loop (0.12 MB/s; 0.45 MB/s with the 30 ms floor).
    "B": Profile(
        "B",
        5 * MB,
        loss=0.20,
        tcp_options={"rto_min": 0.03},
        kernel_rto_min="30ms",
        timeout=200.0,
    ),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_bulk_over_impaired_link_is_byte_exact(
    wire: tuple[Host, Host], loop_kind: LoopKind, family: str, profile: str, direction: str
) -> None:
    """``up`` = aiotcp sends to a kernel sink, ``down`` = aiotcp receives from a kernel
    source; either way every byte arrives exactly once and in order (SHA-256), while
    data and ACKs are lost, delayed, reordered and duplicated."""
    a, b = wire
    p = PROFILES[profile]
    name = f"profile {p.name} {direction} {loop_kind} {family}"
    peer = b.address_of(family)
    # The arrival order is judged by IPv4's IP ID, which IPv6 has no counterpart of.
    record = direction == "down" and family == "ipv4"
    if p.kernel_rto_min:
        kernel_rto_min(b, p.kernel_rto_min, family)
    before = kernel_tcp_stats(b)
    with contextlib.ExitStack() as es:
        if direction == "up":
            data = pattern(p.size, seed=5)
            sink = es.enter_context(kernel_sink(b, PORT))
        else:
            es.enter_context(kernel_source(b, PORT, p.size))
        if record:
            arrivals = es.enter_context(arrival_recorder(a, PORT))
        # Each direction impaired once, on arrival where it can be (module docstring).
        to_b = es.enter_context(p.impair(b, seed=p.seed))
        to_a = es.enter_context(p.impair(a, seed=p.seed + 1))
        es.enter_context(a.entered())
        if direction == "up":
            result = run(
                lambda: send_bulk(peer, PORT, data, **p.tcp_options),
                loop_kind,
                timeout=p.timeout,
            )
            assert sink.read_result() == (p.size, sha(data))
        else:
            result = run(
                lambda: receive_bulk(peer, PORT, **p.tcp_options),
                loop_kind,
                timeout=p.timeout,
            )
            assert (result.nbytes, result.sha256) == (p.size, sha(pattern(p.size)))
    kernel = stats_delta(before, kernel_tcp_stats(b))
    extra: dict[str, Any] = {"A->B": to_b.stats, "B->A": to_a.stats, "kernel": kernel}
    if record:
        extra["as aiotcp received it"] = reorder_stats(arrivals)
    report(name, result, **extra)
    # The impairment really happened, at the configured rates, in both directions.
    for imp in (to_b, to_a):
        assert_rate(imp.stats, "dropped", p.loss)
        assert_rate(imp.stats, "duplicated", p.dup * (1 - p.loss))
    if p.reorder and record:
        seen = reorder_stats(arrivals)
        # Held-back packets that nothing overtook (a burst's last) stay in order.
        assert 0.5 * p.reorder <= seen.reordered / seen.packets <= 1.5 * p.reorder, seen
    if p.reorder:
        assert_rate(to_a.stats, "held_back", p.reorder * (1 - p.loss))
    if direction == "down":
        assert kernel["RetransSegs"] > 0  # the kernel had losses to repair
    else:
        assert result.counters["retransmits"] > 0


def assert_rate(stats: ImpairStats, what: str, p: float) -> None:
    """``what`` happened to a fraction p of the packets, within 5 binomial sigmas.

    Streams under 30 packets (a receiver's ACKs for a small transfer) say nothing.
    """
    n = getattr(stats, what)
    if p == 0:
        assert n == 0
        return
    if stats.seen < 30:
        return
    sigma = math.sqrt(p * (1 - p) / stats.seen)
    assert abs(n / stats.seen - p) <= 5 * sigma, f"{what}: {n}/{stats.seen} for p={p}"


# --------------------------------------------------------------------- outages

FAST_RTO: dict[str, Any] = {"rto_initial": 0.2, "rto_min": 0.05, "rto_max": 1.0}


@contextlib.contextmanager
def link_down(a: Host, b: Host) -> Iterator[None]:
    """Every packet between A and B is lost, both ways, until the block exits.

    DROP on each receiver's INPUT (``iptables_drop``'s advice): neither sender
    sees an error, exactly as when a cable is pulled somewhere in between. aiotcp
    receives through raw IP sockets, which sit behind INPUT, for both families.
    """
    with iptables_drop(a, probability=1.0), iptables_drop(b, probability=1.0):
        yield


def dropped_by_rules(host: Host) -> int:
    """Packets ``link_down``'s rules in ``host`` have taken so far (DROP, and the
    silent drops' NFQUEUE), in both tables."""
    total = 0
    for command in tables(host):
        for chain in ("INPUT", "POSTROUTING"):
            listing = [command, "-w", "-t", "mangle", "-L", chain, "-v", "-x", "-n"]
            for line in host.run(listing).stdout.splitlines():
                if {"DROP", "NFQUEUE"} & set(line.split()):
                    total += int(line.split()[0])
    return total


@dataclass
class Outage:
    """Take the link down once ``start_at`` bytes are through, for ``seconds``
    (``None``: for good). Runs as a task beside the transfer; times are
    ``time.monotonic()``."""

    a: Host
    b: Host
    start_at: int
    seconds: float | None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    began: float = 0.0
    """The DROP rules are in place."""
    restoring: float = 0.0
    """The rules start to go (the link may carry packets from here on)."""
    ended: float = 0.0
    """The rules are gone."""
    resumed: float = 0.0
    """First progress the transfer reported after ``restoring``."""
    dropped: int = 0

    def progress(self, nbytes: int) -> None:
        if nbytes >= self.start_at:
            self.started.set()
        if self.restoring and not self.resumed:
            self.resumed = time.monotonic()

    async def run(self, es: contextlib.ExitStack) -> None:
        await self.started.wait()
        await asyncio.to_thread(es.enter_context, link_down(self.a, self.b))
        self.began = time.monotonic()
        if self.seconds is None:
            return
        await asyncio.sleep(self.seconds)
        self.dropped = await asyncio.to_thread(self.count)
        self.restoring = time.monotonic()
        await asyncio.to_thread(es.close)
        self.ended = time.monotonic()

    def count(self) -> int:
        return dropped_by_rules(self.a) + dropped_by_rules(self.b)


OUTAGE_SIZE = 20 * MB
OUTAGE_SECONDS = 3.5


@pytest.mark.parametrize("direction", ["up", "down"])
def test_connection_survives_a_link_outage(
    wire: tuple[Host, Host], loop_kind: LoopKind, family: str, direction: str
) -> None:
    """The link goes fully down for 3.5 s mid-transfer (several RTO backoffs with a
    50 ms RTO floor), then comes back: the transfer resumes and is byte-exact."""
    a, b = wire
    peer = b.address_of(family)
    kernel_rto_min(b, "50ms", family)
    sysctl(b, "net.ipv4.tcp_rto_max_ms", "1000")  # Linux >= 6.15, like aiotcp's rto_max
    data = pattern(OUTAGE_SIZE, seed=8)

    async def main() -> tuple[TransferResult, Outage]:
        with contextlib.ExitStack() as es:
            outage = Outage(a, b, start_at=OUTAGE_SIZE // 5, seconds=OUTAGE_SECONDS)
            task = asyncio.create_task(outage.run(es))
            try:
                if direction == "up":
                    result = await send_bulk(
                        peer, PORT, data, on_progress=outage.progress, **FAST_RTO
                    )
                else:
                    result = await receive_bulk(peer, PORT, on_progress=outage.progress, **FAST_RTO)
                await task
            finally:
                task.cancel()
            return result, outage

    before = kernel_tcp_stats(b)
    with contextlib.ExitStack() as es:
        if direction == "up":
            sink = es.enter_context(kernel_sink(b, PORT))
        else:
            es.enter_context(kernel_source(b, PORT, OUTAGE_SIZE))
        es.enter_context(a.entered())
        result, outage = run(main, loop_kind, timeout=60)
        if direction == "up":
            assert sink.read_result() == (OUTAGE_SIZE, sha(data))
        else:
            assert (result.nbytes, result.sha256) == (OUTAGE_SIZE, sha(pattern(OUTAGE_SIZE)))
    kernel = stats_delta(before, kernel_tcp_stats(b))
    report(
        f"outage {direction} {loop_kind} {family}",
        result,
        outage=f"{outage.restoring - outage.began:.2f} s, {outage.dropped} packets dropped, "
        f"rules removed in {outage.ended - outage.restoring:.2f} s, "
        f"progress again {outage.resumed - outage.restoring:.2f} s after that began",
        kernel=kernel,
    )
    assert outage.dropped > 0
    assert result.seconds > OUTAGE_SECONDS
    # rto_max = 1 s on both ends: the first retransmission after the outage comes
    # within a second, and the transfer moves on right away.
    assert 0 < outage.resumed - outage.restoring < 2.5
    if direction == "up":
        assert result.counters["rto_expirations"] >= 4
    else:
        assert kernel["TCPTimeouts"] >= 4


@pytest.mark.parametrize(
    "give_up", [{"retries": 4}, {"user_timeout": 1.5}], ids=["retries", "user_timeout"]
)
def test_a_link_that_stays_down_times_out_and_frees_everything(
    wire: tuple[Host, Host], loop_kind: LoopKind, family: str, give_up: dict[str, Any]
) -> None:
    """aiotcp is sending when the link dies for good: after the retry limit (or the
    user timeout) the transfer fails with TimeoutError, the connection is gone from
    ``aiotcp.connections()`` and its port is free again."""
    a, b = wire
    data = pattern(OUTAGE_SIZE, seed=9)
    options = {**FAST_RTO, **give_up}
    local_port: list[int] = []

    async def main() -> dict[str, Any]:
        with contextlib.ExitStack() as es:
            outage = Outage(a, b, start_at=OUTAGE_SIZE // 10, seconds=None)
            task = asyncio.create_task(outage.run(es))
            _, writer = await aiotcp.open_connection(b.address_of(family), PORT, **options)
            local_port.append(writer.get_extra_info("sockname")[1])
            try:
                with pytest.raises(TimeoutError):
                    for offset in range(0, len(data), 65536):
                        writer.write(data[offset : offset + 65536])
                        outage.progress(offset)
                        await writer.drain()
                gave_up = time.monotonic()
                info = writer.get_extra_info("aiotcp")
                writer.close()
                for _ in range(100):  # the driver task forgets the connection
                    if not aiotcp.connections():
                        break
                    await asyncio.sleep(0.01)
                rows = aiotcp.connections()
                owned = aiotcp.get_stack().guard.owns(local_port[0])
                # While the stack still runs, the kernel can hand the port out again.
                kind = socket.AF_INET if family == "ipv4" else socket.AF_INET6
                with socket.socket(kind) as s:
                    s.bind((a.address_of(family), local_port[0]))
            finally:
                task.cancel()
            return {
                "after": gave_up - outage.began,
                "rows": rows,
                "owned": owned,
                "info": info,
                "dropped": outage.count(),
            }

    with kernel_sink(b, PORT), a.entered():
        out = run(main, loop_kind, timeout=60)
    counters = out["info"].counters
    print(
        f"\n[impaired] stays down {give_up} {loop_kind} {family}: TimeoutError "
        f"{out['after']:.2f} s after the link went down; state {out['info'].state}; "
        f"rto_expirations={counters['rto_expirations']} retransmits={counters['retransmits']} "
        f"dropped={out['dropped']}"
    )
    assert out["rows"] == []
    assert not out["owned"]
    assert out["dropped"] > 0
    if "retries" in give_up:
        # 0.05+0.1+0.2+0.4+0.8 s of backoff: gives up after 4 retransmissions.
        assert counters["rto_expirations"] == give_up["retries"]
        assert 1.0 <= out["after"] < 6.0
    else:
        assert 1.5 - 0.2 <= out["after"] < 1.5 + 1.5


SHORT_OUTAGE = 2.0


@pytest.mark.parametrize("phase", ["handshake", "close"])
def test_handshake_and_close_survive_a_link_outage(
    wire: tuple[Host, Host], loop_kind: LoopKind, family: str, phase: str
) -> None:
    """The link is down for 2 s while aiotcp sends its SYN (``handshake``) or its FIN
    (``close``): both are retransmitted with backoff until the link is back, then
    the connection opens, or closes with every byte delivered."""
    a, b = wire
    peer = b.address_of(family)
    data = pattern(100_000, seed=10)

    async def restore_after(es: contextlib.ExitStack, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await asyncio.to_thread(es.close)

    async def main() -> tuple[float, Any]:
        with contextlib.ExitStack() as es:
            if phase == "close":
                reader, writer = await aiotcp.open_connection(peer, PORT, **FAST_RTO)
                writer.write(data)
                await writer.drain()
                for _ in range(200):  # all data acknowledged: only the FIN will be lost
                    info = writer.get_extra_info("aiotcp")
                    if info.snd_una == info.snd_nxt and info.send_queue == 0:
                        break
                    await asyncio.sleep(0.01)
            await asyncio.to_thread(es.enter_context, link_down(a, b))
            t0 = time.monotonic()
            restore = asyncio.create_task(restore_after(es, SHORT_OUTAGE))
            try:
                if phase == "handshake":
                    reader, writer = await aiotcp.open_connection(peer, PORT, **FAST_RTO)
                    writer.write(data)
                writer.write_eof()
                assert await reader.read() == b""  # the sink's FIN: it has everything
                elapsed = time.monotonic() - t0
                info = writer.get_extra_info("aiotcp")
                writer.close()
                await restore
            finally:
                restore.cancel()
        return elapsed, info

    with kernel_sink(b, PORT) as sink, a.entered():
        elapsed, info = run(main, loop_kind, timeout=30)
        assert sink.read_result() == (len(data), sha(data))
    print(
        f"\n[impaired] {phase} during a {SHORT_OUTAGE} s outage {loop_kind} {family}: done after "
        f"{elapsed:.2f} s; rto_expirations={info.counters['rto_expirations']} "
        f"retransmits={info.counters['retransmits']}"
    )
    assert SHORT_OUTAGE <= elapsed < SHORT_OUTAGE + 2.0
    assert info.counters["rto_expirations"] >= 3


def test_outage_helpers_clean_up(wire: tuple[Host, Host], family: str) -> None:
    """link_down leaves no rule behind, in either family's table."""
    a, b = wire
    with link_down(a, b):
        assert dropped_by_rules(a) == 0  # (B may send IPv6's own multicast meanwhile)
    for host in (a, b):
        for command in ("iptables", "ip6tables"):
            rules = host.run([command, "-w", "-t", "mangle", "-S"]).stdout
            assert "DROP" not in rules and "NFQUEUE" not in rules
