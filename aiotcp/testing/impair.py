"""Link impairment (loss, delay, jitter → reordering, duplication) without netem.

This kernel has no netem qdisc, so packets are diverted to user space instead: an
iptables ``NFQUEUE`` rule in one host's namespace hands every packet of that host's
veth to a helper process (``python -m aiotcp.testing.impair``) that decides, with a
seeded RNG, to drop it, hold it for ``delay ± jitter`` (deferred verdict, so packets
overtake each other → reordering) and/or send an extra copy. All randomness comes
from ``--seed``: the same traffic sees the same decisions.

Where the rules live, and why:

* ``direction="in"``: ``mangle INPUT -i <veth>``; ``"out"``: ``mangle POSTROUTING
  -o <veth>``; ``"both"``: both rules, one queue. The mangle table runs before
  ``filter``, so a packet we accept still meets every filter rule (e.g. aiotcp's RST
  guard): an NFQUEUE accept skips only the rest of the table that queued it.
* aiotcp receives through raw IP sockets, which the kernel serves after INPUT, so
  ``direction="in"`` in aiotcp's own host impairs what reaches it; its AF_PACKET
  sends (GSO) bypass netfilter, so what aiotcp sends is impaired in the peer's
  host.  Loss decided in the helper is invisible to the sender (asynchronous
  verdict), like loss on a wire.
* On a host with IPv6 (``Host.address6``) every rule is also an ip6tables rule,
  into the same queue: both families are impaired alike.
* Duplicates are re-sent through a raw socket with ``SO_MARK``; the rules skip that
  mark, so copies are not impaired again. Inbound copies travel via ``lo`` (so a
  capture on the veth shows inbound duplicates only on the sending side); outbound
  copies leave through the veth and appear in captures on both sides.

:func:`iptables_drop` is the helper-free alternative: deterministic (``--mode nth``)
or random (``--mode random``) loss straight from the ``statistic`` match.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiotcp.core.checksum import ones_sum
from aiotcp.testing.netns import Host, read_line

if TYPE_CHECKING:
    from netfilterqueue import Packet

Direction = Literal["in", "out", "both"]
MARK_BASE = 0xA17C0000
"""Marks ``MARK_BASE | queue`` label our duplicate copies (skipped by our rules)."""

_queues = itertools.count(1 + os.getpid() % 30000)


@dataclass
class ImpairStats:
    """What the helper did, reported when it exits."""

    seen: int = 0
    dropped: int = 0
    duplicated: int = 0
    delayed: int = 0
    ce_marked: int = 0
    held_back: int = 0


@dataclass
class Impairment:
    """A running impairment; ``stats`` is filled in when the context exits."""

    host: Host
    queue: int
    rules: list[list[str]]
    pid: int
    stats: ImpairStats = field(default_factory=ImpairStats)
    helper: str = "python"
    """Which helper reads the queue: ``"python"`` (:func:`impair`) or ``"c"``
    (:func:`aiotcp.testing.fastimpair.fast_impair`)."""
    counters: dict[str, int] = field(default_factory=dict)
    """Everything the C helper reported on exit (empty for the Python helper)."""


def _hooks(host: Host, direction: Direction) -> list[list[str]]:
    hooks = []
    if direction in ("in", "both"):
        hooks.append(["INPUT", "-i", host.ifname])
    if direction in ("out", "both"):
        hooks.append(["POSTROUTING", "-o", host.ifname])
    if not hooks:
        raise ValueError(f"direction must be in/out/both, not {direction!r}")
    return hooks


def tables(host: Host) -> list[str]:
    """The firewall commands whose rules see ``host``'s traffic: ip6tables as well
    when the host has IPv6."""
    return ["iptables", "ip6tables"] if host.address6 is not None else ["iptables"]


NEIGHBOUR_DISCOVERY = ("135", "136")
"""ICMPv6 neighbour solicitation and advertisement: the link's own business, as
ARP is IPv4's (which never meets iptables), so no impairment touches them and
both families lose, delay and copy the same traffic."""


@contextlib.contextmanager
def _rules(host: Host, rules: list[list[str]]) -> Iterator[None]:
    """Insert rules (mangle table; each starts with its hook, as ``_hooks`` makes
    them) in ``host``, for each of its families; delete them on exit."""
    added: list[tuple[str, list[str]]] = []
    ipv6 = "ip6tables" in tables(host)
    hooks = list(dict.fromkeys(tuple(rule[:3]) for rule in rules)) if ipv6 else []
    exempt = [
        [*hook, "-p", "ipv6-icmp", "-m", "icmp6", "--icmpv6-type", kind, "-j", "ACCEPT"]
        for hook in hooks
        for kind in NEIGHBOUR_DISCOVERY
    ]
    try:
        for rule in rules:
            for command in tables(host):
                host.run([command, "-w", "-t", "mangle", "-I", *rule])
                added.append((command, rule))
        for rule in exempt:  # inserted last: first in the chain
            host.run(["ip6tables", "-w", "-t", "mangle", "-I", *rule])
            added.append(("ip6tables", rule))
        yield
    finally:
        for command, rule in reversed(added):
            host.run([command, "-w", "-t", "mangle", "-D", *rule], check=False)


@contextlib.contextmanager
def impair(
    host: Host,
    loss: float = 0.0,
    delay: float = 0.0,
    jitter: float = 0.0,
    dup: float = 0.0,
    seed: int = 0,
    direction: Direction = "in",
    proto: str | None = None,
    ce: float = 0.0,
    reorder: float = 0.0,
    reorder_gap: float = 0.002,
) -> Iterator[Impairment]:
    """Impair traffic on ``host``'s veth for the duration of the block.

    ``loss``/``dup`` are probabilities per packet, ``delay``/``jitter`` seconds (each
    packet waits a uniform ``delay ± jitter``, never below 0). ``ce`` is the chance
    that an ECN-capable packet gets marked Congestion Experienced instead (an AQM
    router's answer to a queue, RFC 3168). ``reorder`` asks for a controlled amount
    of reordering instead of what jitter happens to produce: the delayed packets keep
    their order (jitter then varies the spacing only) and a fraction ``reorder`` of
    them is held back ``reorder_gap`` seconds more, so the packets behind overtake it
    (netem's ``reorder``, the other way round). ``proto`` (e.g.
    ``"tcp"``) limits the rule to one protocol. The helper is bound to its queue
    before the rule exists, and the rule is gone before the helper stops (which then
    releases every held packet at once), so no packet meets a queue with no reader.
    """
    for name, p in (("loss", loss), ("dup", dup), ("ce", ce), ("reorder", reorder)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability, got {p}")
    if delay < 0 or jitter < 0:
        raise ValueError("delay and jitter must be >= 0")
    queue, mark, rules = queue_rules(host, direction, proto)
    args = [f"--queue={queue}", f"--mark={mark}", f"--loss={loss}", f"--delay={delay}"]
    args += [f"--jitter={jitter}", f"--dup={dup}", f"--seed={seed}", f"--ce={ce}"]
    args += [f"--reorder={reorder}", f"--reorder-gap={reorder_gap}"]
    proc = host.python(["-m", "aiotcp.testing.impair", *args], stdout=subprocess.PIPE, text=True)
    result = Impairment(host=host, queue=queue, rules=rules, pid=proc.pid)

    def on_report(report: dict[str, Any]) -> None:
        result.stats = ImpairStats(**report)

    with serving(host, proc, rules, "impairment helper", on_report):
        yield result


def queue_rules(
    host: Host, direction: Direction, proto: str | None
) -> tuple[int, int, list[list[str]]]:
    """A fresh queue number, the mark its helper's own copies carry, and the rules
    that hand ``host``'s packets to it (all but those copies)."""
    queue = next(_queues) % 0xFFFF
    mark = MARK_BASE | queue
    match = ["-p", proto] if proto else []
    target = ["-m", "mark", "!", "--mark", hex(mark), "-j", "NFQUEUE", "--queue-num", str(queue)]
    return queue, mark, [[*hook, *match, *target] for hook in _hooks(host, direction)]


@contextlib.contextmanager
def serving(
    host: Host,
    proc: subprocess.Popen[str],
    rules: list[list[str]],
    what: str,
    on_report: Callable[[dict[str, Any]], None],
) -> Iterator[None]:
    """The helper ``proc`` says "ready", the rules divert packets to it for the
    block, and then it is stopped — the block raising or not — and ``on_report``
    gets the JSON report it printed on its way out."""
    try:
        try:
            ready = read_line(proc.stdout, 15.0).strip() == "ready"
        except EOFError:
            ready = False
        if not ready:
            raise RuntimeError(f"{what} did not start (its stderr says why)")
        with _rules(host, rules):
            yield
    finally:
        out, _ = host.stop(proc, timeout=5.0)
        for line in out.splitlines():
            if line.startswith("{"):
                on_report(json.loads(line))


@contextlib.contextmanager
def iptables_drop(
    host: Host,
    *,
    probability: float | None = None,
    every: int | None = None,
    packet: int = 0,
    direction: Direction = "in",
    proto: str | None = None,
) -> Iterator[None]:
    """Drop packets with the ``statistic`` match, no helper process needed.

    Give ``every=N`` (drop packet ``packet``, 0-based, of each N: deterministic) or
    ``probability=p`` (kernel RNG, not seeded). Prefer ``direction="in"`` on the
    receiver: a DROP on the sending host's output path makes the sender's
    ``send``/``sendto`` fail with EPERM, which real loss never does.
    """
    if (probability is None) == (every is None):
        raise ValueError("give exactly one of probability= or every=")
    if every is not None:
        stat = ["--mode", "nth", "--every", str(every), "--packet", str(packet)]
    else:
        stat = ["--mode", "random", "--probability", str(probability)]
    match = ["-p", proto] if proto else []
    rules = [
        [*hook, *match, "-m", "statistic", *stat, "-j", "DROP"] for hook in _hooks(host, direction)
    ]
    with _rules(host, rules):
        yield


# ----------------------------------------------------------------- helper process


class _Helper:
    """Runs inside the namespace: reads the queue, decides, issues verdicts."""

    def __init__(self, opts: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> None:
        from netfilterqueue import NetfilterQueue

        self.opts = opts
        self.loop = loop
        self.rng = random.Random(opts.seed)
        # CE marks draw from their own generator: enabling them leaves the loss,
        # duplication and delay decisions of a seed unchanged.
        self.ce_rng = random.Random(opts.seed + 1)
        self.order_rng = random.Random(opts.seed + 2)
        self.last_release = 0.0  # with --reorder, in-order packets never overtake
        self.stats = ImpairStats()
        self.held: dict[int, tuple[asyncio.TimerHandle, Packet]] = {}
        self.ids = itertools.count()
        self.closing = False
        self.raw = self.raw_socket(socket.AF_INET)
        self.raw6: socket.socket | None = None  # opened by the first IPv6 copy
        self.nfq = NetfilterQueue()
        self.nfq.bind(opts.queue, self.on_packet, max_len=65535, sock_len=64 * 1024 * 1024)

    def raw_socket(self, family: int) -> socket.socket:
        """A socket that sends whole IP packets (``IPPROTO_RAW`` implies a header
        included, in either family) carrying our mark."""
        raw = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_MARK, struct.pack("I", self.opts.mark))
        return raw

    def on_packet(self, pkt: Packet) -> None:
        """Decide one packet's fate. All three random numbers are drawn for every
        packet, so the decisions for packet *n* do not depend on which impairments
        are enabled."""
        if self.closing:  # shutting down: let everything still queued through
            pkt.accept()
            return
        opts, rng = self.opts, self.rng
        r_loss, r_dup, r_delay = rng.random(), rng.random(), rng.uniform(-1.0, 1.0)
        self.stats.seen += 1
        try:
            if r_loss < opts.loss:
                self.stats.dropped += 1
                pkt.drop()
                return
            if opts.ce:
                self.maybe_mark_ce(pkt)
            copy = r_dup < opts.dup
            wait = max(0.0, opts.delay + opts.jitter * r_delay)
            when = self.loop.time() + wait
            if opts.reorder:
                when = self.ordered_release(when)
            if wait <= 0.0 and not opts.reorder:
                self.release(pkt, copy, None)
                return
            pkt.retain()
            self.stats.delayed += 1
            key = next(self.ids)
            handle = self.loop.call_at(when, self.release, pkt, copy, key)
            self.held[key] = (handle, pkt)
        except Exception as exc:  # never let an exception escape into the C callback
            print(f"impair: {exc!r}", file=sys.stderr, flush=True)
            with contextlib.suppress(Exception):
                pkt.accept()

    def ordered_release(self, when: float) -> float:
        """``--reorder``: keep the stream in order, except a fraction held back.

        Absolute times, scheduled with ``call_at``: ``call_later`` would add the
        clock's drift between packets and undo the order."""
        # Strictly later than the previous release: the loop's timer heap does not
        # keep equal deadlines in the order they were scheduled.
        at = max(self.last_release + 1e-6, when)
        if self.order_rng.random() < self.opts.reorder:
            self.stats.held_back += 1
            gap: float = self.opts.reorder_gap
            return at + gap
        self.last_release = at
        return at

    def maybe_mark_ce(self, pkt: Packet) -> None:
        """Set CE on an ECT(0)/ECT(1) packet with probability ``--ce`` (RFC 3168 §5)."""
        if self.ce_rng.random() >= self.opts.ce:
            return
        ip = bytearray(pkt.get_payload())
        if len(ip) >= 40 and ip[0] >> 4 == 6:
            # The traffic class straddles bytes 0 and 1; its ECN bits are 0x30 of
            # byte 1. No header checksum to fix.
            if (ip[1] >> 4) & 3 not in (1, 2):
                return
            ip[1] |= 0x30
            pkt.set_payload(bytes(ip))
            self.stats.ce_marked += 1
            return
        if len(ip) < 20 or ip[1] & 3 not in (1, 2):
            return
        ip[1] |= 3
        ip[10] = ip[11] = 0
        csum = ~ones_sum(ip[: (ip[0] & 0x0F) * 4]) & 0xFFFF
        ip[10], ip[11] = csum >> 8, csum & 0xFF
        pkt.set_payload(bytes(ip))
        self.stats.ce_marked += 1

    def release(self, pkt: Packet, copy: bool, key: int | None) -> None:
        if key is not None:
            self.held.pop(key, None)
        payload = pkt.get_payload() if copy else b""
        pkt.accept()
        if copy:
            self.stats.duplicated += 1
            try:
                if payload[0] >> 4 == 6:
                    if self.raw6 is None:
                        self.raw6 = self.raw_socket(socket.AF_INET6)
                    dst6 = socket.inet_ntop(socket.AF_INET6, payload[24:40])
                    self.raw6.sendto(payload, (dst6, 0))
                else:
                    self.raw.sendto(payload, (socket.inet_ntoa(payload[16:20]), 0))
            except OSError as exc:
                print(f"impair: duplicate not sent: {exc!r}", file=sys.stderr, flush=True)

    def flush(self) -> None:
        """Release everything still held (shutdown): no packet is lost by stopping."""
        for handle, pkt in list(self.held.values()):
            handle.cancel()
            self.release(pkt, False, None)
        self.held.clear()

    def close(self) -> None:
        self.nfq.unbind()
        self.raw.close()
        if self.raw6 is not None:
            self.raw6.close()


async def _serve(opts: argparse.Namespace) -> ImpairStats:
    loop = asyncio.get_running_loop()
    helper = _Helper(opts, loop)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    fd = helper.nfq.get_fd()
    loop.add_reader(fd, helper.nfq.run, False)
    print("ready", flush=True)
    try:
        await stop.wait()
    finally:
        loop.remove_reader(fd)
        helper.closing = True
        helper.nfq.run(False)  # drain packets queued but not yet read
        helper.flush()
        helper.close()
    return helper.stats


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the helper; prints ``ready``, then a JSON stats line on exit."""
    parser = argparse.ArgumentParser(prog="python -m aiotcp.testing.impair")
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--mark", type=int, default=None)
    parser.add_argument("--loss", type=float, default=0.0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--jitter", type=float, default=0.0)
    parser.add_argument("--dup", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ce", type=float, default=0.0)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--reorder-gap", type=float, default=0.002)
    opts = parser.parse_args(argv)
    if opts.mark is None:
        opts.mark = MARK_BASE | opts.queue
    stats = asyncio.run(_serve(opts))
    print(json.dumps(stats.__dict__), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
