"""Hostile input against the running stack: fuzzed segments, a SYN flood, memory bounds.

The attacker is ``python -m aiotcp.testing.fuzz`` in host B (its own process).
aiotcp runs in host A on the test's loop with a listener and an established
connection whose byte stream is checked end to end while the attack runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import subprocess
import threading
import time
from typing import Any

import aiotcp
from aiotcp.core.segment import DropReason
from aiotcp.testing.loops import LoopKind, run
from aiotcp.testing.netns import Host, kernel_echo_server, pattern

ECHO = 7000
LISTEN = 8080
STREAM = 2 * 1024 * 1024


def fuzzer(b: Host, *args: str) -> subprocess.Popen[str]:
    return b.python(
        ["-m", "aiotcp.testing.fuzz", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class Crashes(logging.Handler):
    """Collects every error the loop or the stack logs: there must be none."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    writer.close()


def test_fuzzed_and_malformed_segments_never_crash_or_corrupt(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    a, b = family_hosts
    here, there = a.address_of(family), b.address_of(family)
    count = 100_000 if loop_kind == "asyncio" else 25_000
    crashes = Crashes()
    logging.getLogger().addHandler(crashes)
    report: dict[str, Any] = {}

    async def stream_check(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        data = pattern(STREAM, seed=3)
        got = bytearray()

        async def read_all() -> None:
            while len(got) < len(data):
                got.extend(await reader.read(65536))

        reading = asyncio.ensure_future(read_all())
        for i in range(0, len(data), 4096):
            writer.write(data[i : i + 4096])
            await writer.drain()
            await asyncio.sleep(0.002)  # spread the stream over the attack
        await reading
        return hashlib.sha256(got).digest() == hashlib.sha256(data).digest()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda lp, ctx: crashes.records.append(str(ctx)))
        stack = aiotcp.get_stack()
        server = await aiotcp.start_server(echo, port=LISTEN, backlog=64)
        reader, writer = await aiotcp.open_connection(there, ECHO)
        info = writer.get_extra_info("aiotcp")
        conn = f"{ECHO}:{info.local[1]}:{info.rcv_nxt}:{info.snd_nxt}"
        attack = fuzzer(
            b, "malformed", "--dst", here, "--src", there,
            "--listen-port", str(LISTEN), "--conn", conn,
            "--count", str(count), "--rate", "25000", "--seconds", "40",
        )  # fmt: skip
        intact = await stream_check(reader, writer)
        out, err = await asyncio.to_thread(attack.communicate, None, 60)
        assert attack.returncode == 0, err
        report["fuzzer"] = json.loads(out)
        await asyncio.sleep(0.5)
        report["counters"] = dict(stack.counters)
        assert intact, "the established stream was corrupted"
        assert writer.get_extra_info("aiotcp").state == "ESTABLISHED"
        # The listener still serves a real client afterwards.
        r2, w2 = await aiotcp.open_connection(here, LISTEN)
        w2.write(b"still alive\n")
        assert await r2.readline() == b"still alive\n"
        w2.close()
        writer.close()
        server.close()
        report["crashes"] = list(crashes.records)  # before shutdown cancels the handlers

    try:
        with kernel_echo_server(b, ECHO), a.entered():
            run(main, loop_kind, timeout=120)
    finally:
        logging.getLogger().removeHandler(crashes)
    assert report["crashes"] == [], report["crashes"][:5]
    fuzz, counters = report["fuzzer"], report["counters"]
    print(f"\nfuzzed {fuzz['sent']} packets at {fuzz['rate']:.0f}/s: {fuzz['by_class']}")
    print("drops:", {k: v for k, v in sorted(counters.items()) if k.startswith("drop_")})
    assert fuzz["sent"] == count
    for reason in (
        DropReason.BAD_CHECKSUM,
        DropReason.TRUNCATED_TCP,
        DropReason.BAD_DATA_OFFSET,
        DropReason.BAD_OPTION_LENGTH,
    ):
        assert counters.get(f"drop_{reason.value}", 0) > 0, f"no {reason.value} drops counted"


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_syn_flood_with_cookies_keeps_real_clients_served(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    """Spoofed SYNs at full speed (sources in 198.19.0.0/16 or fd00:198:19::/48,
    routed into B where they die) while a kernel client keeps connecting: with SYN
    cookies it keeps succeeding, the SYN queue never exceeds the backlog, and memory
    stays bounded."""
    a, b = family_hosts
    here = a.address_of(family)
    backlog, seconds = 128, 4.0
    spoofed = "198.19.0.0/16" if family == "ipv4" else "fd00:198:19::/48"
    a.run(["ip", "route", "add", spoofed, "via", b.address_of(family)])
    report: dict[str, Any] = {}

    def real_clients(deadline: float) -> tuple[int, int]:
        ok = tried = 0
        while time.monotonic() < deadline:
            tried += 1
            try:
                with socket.create_connection((here, LISTEN), timeout=2) as s:
                    s.sendall(b"ping\n")
                    if s.recv(10) == b"ping\n":
                        ok += 1
            except OSError:
                pass
        return ok, tried

    async def main() -> None:
        stack = aiotcp.get_stack()
        server = await aiotcp.start_server(echo, port=LISTEN, backlog=backlog)
        rss0 = rss_kib()
        flood = fuzzer(
            b, "synflood", "--dst", here, "--listen-port", str(LISTEN),
            "--src-net", spoofed, "--count", "10000000", "--seconds", str(seconds),
        )  # fmt: skip
        clients = asyncio.ensure_future(
            asyncio.to_thread(b.call, real_clients, time.monotonic() + seconds, timeout=60)
        )
        max_half_open, peak = 0, rss0
        for _ in range(int(seconds * 10)):
            await asyncio.sleep(0.1)
            half_open = sum(1 for r in aiotcp.connections() if r["state"] == "SYN-RECEIVED")
            max_half_open = max(max_half_open, half_open)
            peak = max(peak, rss_kib())
        out, _err = await asyncio.to_thread(flood.communicate, None, 60)
        ok, tried = await clients
        listener = next(r for r in aiotcp.connections() if r["state"] == "LISTEN")
        report.update(
            flood=json.loads(out), ok=ok, tried=tried, max_half_open=max_half_open,
            rss_growth_kib=peak - rss0, listener=listener, counters=dict(stack.counters),
        )  # fmt: skip
        server.close()

    with a.entered():
        run(main, "asyncio", timeout=120)
    flood, listener = report["flood"], report["listener"]
    print(
        f"\nSYN flood: {flood['sent']} SYNs in {flood['seconds']:.1f} s "
        f"({flood['rate']:.0f}/s sent); stack received {report['counters'].get('rx_packets', 0)}, "
        f"cookies sent {listener['counters']['cookies_sent']}; "
        f"real clients {report['ok']}/{report['tried']}; "
        f"max SYN-RECEIVED {report['max_half_open']}; RSS growth {report['rss_growth_kib']} KiB"
    )
    assert report["max_half_open"] <= backlog
    assert listener["counters"]["cookies_sent"] > 0
    assert report["tried"] > 0 and report["ok"] / report["tried"] >= 0.9
    assert report["rss_growth_kib"] < 64 * 1024


def test_a_peer_that_never_reads_cannot_make_aiotcp_buffer_without_bound(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """Write buffering is the application's to bound (drain()); aiotcp's own buffers
    stop at the configured send buffer, and the peer's zero window is respected."""
    a, b = family_hosts
    listener = b.listen(ECHO)

    async def main() -> dict[str, Any]:
        peer = b.address_of(family)
        _reader, writer = await aiotcp.open_connection(peer, ECHO, send_buffer=65536)
        chunk = bytes(65536)
        for _ in range(400):  # 25 MB offered; the kernel peer never reads
            writer.write(chunk)
            try:
                await asyncio.wait_for(writer.drain(), 0.05)
            except TimeoutError:
                break
        await asyncio.sleep(1.0)
        info = writer.get_extra_info("aiotcp")
        writer.transport.abort()
        return {"send_queue": info.send_queue, "snd_wnd": info.snd_wnd}

    with listener, a.entered():
        conn_holder: list[socket.socket] = []
        t = threading.Thread(target=lambda: conn_holder.append(listener.accept()[0]), daemon=True)
        t.start()
        # No linger: abort() leaves the send buffer to be delivered (asyncio's abort
        # over the kernel does), which this peer never lets happen.
        result = run(main, loop_kind, linger=0)
        t.join(5)
        for c in conn_holder:
            c.close()
    assert result["send_queue"] <= 65536
    assert result["snd_wnd"] == 0


def test_idle_connections_cost(hosts: tuple[Host, Host]) -> None:
    """1,000 idle established connections: report the memory each costs.  IPv4 only:
    both ends are aiotcp's (no kernel peer), and what is measured is per connection."""
    a, _b = hosts
    n = 1000
    report: dict[str, float] = {}

    async def main() -> None:
        import gc
        import tracemalloc

        server = await aiotcp.start_server(echo, port=LISTEN, backlog=n)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        conns = []
        for i in range(0, n, 100):
            conns += await asyncio.gather(
                *(aiotcp.open_connection(a.address, LISTEN) for _ in range(min(100, n - i)))
            )
        await asyncio.sleep(0.5)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        states = [r["state"] for r in aiotcp.connections()]
        assert states.count("ESTABLISHED") == 2 * n  # both ends live in this stack
        report["bytes_per_connection"] = (after - before) / (2 * n)
        for _, w in conns:
            w.transport.abort()
        server.close()

    with a.entered():
        run(main, "asyncio", timeout=120)
    per = report["bytes_per_connection"]
    print(f"\n{n} idle connections (each end counted): {per:.0f} bytes each")
    assert report["bytes_per_connection"] < 64 * 1024


def test_time_wait_table_is_bounded(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """Like tcp_max_tw_buckets: past the limit the oldest TIME-WAIT entries go early."""
    a, b = family_hosts

    async def main() -> tuple[list[str], int]:
        for _ in range(12):
            reader, writer = await aiotcp.open_connection(b.address_of(family), ECHO)
            writer.write(b"x\n")
            await reader.readline()
            writer.close()  # we close first: TIME-WAIT is ours
            await writer.wait_closed()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        states = [r["state"] for r in aiotcp.connections()]
        return states, aiotcp.get_stack().counters["time_wait_overflow"]

    with kernel_echo_server(b, ECHO), a.entered():
        states, recycled = run(main, loop_kind, max_time_wait=5)
    assert states == ["TIME-WAIT"] * 5
    assert recycled == 7


def test_syns_to_broadcast_and_multicast_addresses_are_dropped(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """RFC 9293 §3.9.2.3 (MUST-57): a listener on every address answers no SYN sent
    to a broadcast or multicast address (it would answer from that address); IPv6
    has multicast only, A's own solicited-node group among it.  The same SYN sent to
    A's own address is answered, so the test sees a listener at work."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    a, b = family_hosts
    a_mac = bytes.fromhex(
        a.run(["cat", f"/sys/class/net/{a.ifname}/address"]).stdout.replace(":", "").strip()
    )
    b_mac = bytes.fromhex(
        b.run(["cat", f"/sys/class/net/{b.ifname}/address"]).stdout.replace(":", "").strip()
    )

    def frame(dst_mac: bytes, dst_ip: str, sport: int) -> bytes:
        ip = IP(src=b.address, dst=dst_ip) if family == "ipv4" else IPv6(src=b.address6, dst=dst_ip)
        syn = ip / TCP(sport=sport, dport=LISTEN, flags="S", seq=1)
        return bytes(Ether(src=b_mac, dst=dst_mac) / syn)

    if family == "ipv4":
        frames = [
            frame(b"\xff" * 6, "198.18.0.255", 41001),  # the subnet's broadcast address
            frame(b"\xff" * 6, "255.255.255.255", 41002),  # limited broadcast
            frame(bytes.fromhex("01005e000001"), "224.0.0.1", 41003),  # all-hosts multicast
        ]
    else:
        frames = [
            frame(bytes.fromhex("333300000001"), "ff02::1", 41001),  # all nodes
            # A's solicited-node group (fd00:198:18::1), which A's kernel has joined.
            frame(bytes.fromhex("3333ff000001"), "ff02::1:ff00:1", 41002),
            frame(bytes.fromhex("333300000001"), "ff0e::1", 41003),  # global scope
        ]
    control = frame(a_mac, a.address_of(family), 41004)

    def inject(frames: list[bytes]) -> None:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
            s.bind((b.ifname, 0))
            for f in frames:
                s.send(f)

    async def main() -> tuple[int, int]:
        server = await aiotcp.start_server(echo, port=LISTEN)
        listener = aiotcp.get_stack().listeners[LISTEN].listener
        await asyncio.to_thread(b.call, inject, frames)
        await asyncio.sleep(0.3)
        ignored = listener.counters.syns_received
        await asyncio.to_thread(b.call, inject, [control])
        for _ in range(100):
            if listener.counters.syns_received:
                break
            await asyncio.sleep(0.02)
        server.close()
        return ignored, listener.counters.syns_received

    with a.entered():
        assert run(main, loop_kind) == (0, 1)


def test_a_flood_of_forged_icmp_errors_changes_nothing(
    family_hosts: tuple[Host, Host], loop_kind: LoopKind, family: str
) -> None:
    """RFC 5927: 20,000 forged ICMP errors (unreachables, "fragmentation needed"
    down to nothing, time exceeded, broken ones) quoting a live connection with
    sequence numbers not in flight; over IPv6 ICMPv6 errors (Packet Too Big, some
    under the 1280-byte minimum, among them).  The stream stays byte-exact, the
    MSS and the error state untouched; every error is counted where it stopped."""
    a, b = family_hosts
    count = 20_000
    report: dict[str, Any] = {}

    async def main() -> None:
        stack = aiotcp.get_stack()
        reader, writer = await aiotcp.open_connection(b.address_of(family), ECHO)
        info = writer.get_extra_info("aiotcp")
        conn = f"{ECHO}:{info.local[1]}:{info.rcv_nxt}:{info.snd_nxt}"
        attack = fuzzer(
            b, "icmp", "--dst", a.address_of(family), "--src", b.address_of(family),
            "--listen-port", str(LISTEN), "--conn", conn, "--count", str(count),
            "--rate", "10000", "--seconds", "30",
        )  # fmt: skip
        data = pattern(STREAM, seed=4)
        got = bytearray()
        for i in range(0, len(data), 16384):
            writer.write(data[i : i + 16384])
            got += await reader.readexactly(16384)
            await asyncio.sleep(0.015)  # spread the stream over the attack
        out, err = await asyncio.to_thread(attack.communicate, None, 60)
        assert attack.returncode == 0, err
        await asyncio.sleep(0.3)
        after = writer.get_extra_info("aiotcp")
        report.update(
            intact=bytes(got) == data,
            mss=(info.mss, after.mss),
            soft_error=after.soft_error,
            fuzzer=json.loads(out),
            counters=dict(stack.counters),
        )
        writer.close()

    with kernel_echo_server(b, ECHO), a.entered():
        run(main, loop_kind, timeout=120)
    counters = report["counters"]
    print("\nicmp:", {k: v for k, v in sorted(counters.items()) if "icmp" in k})
    assert report["intact"] and report["soft_error"] is None
    assert report["mss"][0] == report["mss"][1]
    assert report["fuzzer"]["sent"] == count
    icmp = "icmp" if family == "ipv4" else "icmp6"
    assert counters.get(icmp + "_acted_on", 0) == 0
    assert counters[icmp + "_ignored"] > count // 3  # the rest: dropped in the kernel or counted
    assert "drop_" + icmp + "_malformed" not in counters
    if family == "ipv4":
        assert counters["drop_icmp_bad_checksum"] > 0
        assert counters["drop_icmp_unknown_code"] > 0
        # Source Quench and errors cut before the quoted sequence number never left
        # the kernel (the ICMP socket's filter): only the other six kinds reached Python.
        assert counters["icmp_received"] < count * 7 // 8
    else:
        assert counters["drop_icmp6_mtu_below_minimum"] > 0  # RFC 8201 §4
        # An unknown error type (ICMP6_FILTER), a bad checksum (the kernel) and
        # errors cut before the sequence number (BPF) never reached Python.
        assert counters["icmp6_received"] < count * 6 // 8
