"""Run one conformance script against the Linux kernel or against aiotcp.

Topology (fresh for every run, so no TIME-WAIT or option leaks between scripts):
two namespaces from ``aiotcp.testing.netns.two_hosts`` with offloads off (the peer
must see wire-sized segments, not GSO super-frames), talking over IPv4 or IPv6 (the
run's ``family``: 198.18.x.1/.2 or fd00:198:18:x::1/::2; a script never names
either).  Host A runs the endpoint under test, host B the scripted peer:

- **A, application side**: either plain kernel sockets driven from one worker thread
  (``LinuxApp``), or aiotcp on an asyncio loop (``AiotcpApp``).  Both execute the
  script's actions one at a time in order, like packetdrill's syscall thread, so
  ``read`` may block while the timeline injects the bytes it waits for.
- **B, the peer**: a ``ScriptedEndpoint`` on a raw socket with its own RST guard
  (``aiotcp.testing.scripted.start_peer``), driven by ``Director`` in a worker thread.
  The director walks the timeline: it injects ``<`` segments, matches ``>`` lines
  with ``expect_segment`` (same diff and transcript as the packet-level tests), hands
  actions to the application side and checks their results.

Ports: the peer is B:5000; a listening endpoint uses A:8080, a connecting one binds
A:62001 (inside aiotcp's ephemeral range, fine for the kernel too) so the peer knows
the 4-tuple before the first SYN.

``run_script`` returns a ``RunResult``; ``run_many`` runs jobs in parallel worker
processes (each its own namespace pair, its own GIL, so timing stays honest).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import ipaddress
import multiprocessing
import os
import queue
import socket
import struct
import threading
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiotcp.conformance.script import (
    LINK,
    STAR,
    Action,
    Event,
    Family,
    OptionSpec,
    Script,
    SegmentSpec,
    load_script,
    parse_value,
)
from aiotcp.core import checksum
from aiotcp.core.segment import ACK, HEADER, SYN, Segment, flags_str
from aiotcp.core.seq import seq_sub
from aiotcp.testing.netns import Host, sysctl, two_hosts
from aiotcp.testing.scripted import ScriptedEndpoint, start_peer, tcpdump_line, while_peer_runs

StackKind = Literal["linux", "aiotcp"]
STACKS: tuple[StackKind, ...] = ("linux", "aiotcp")

PEER_PORT = 5000
SERVER_PORT = 8080
LOCAL_PORT = 62001
UNTIMED_EXPECT_TIMEOUT = 3.0
"""How long an untimed ``>`` line waits (timed ones wait until ``t + tolerance``)."""
START_TIMEOUT = 5.0
"""How long the director waits for a non-blocking action to finish (or a blocking
one to start): longer means the application side is stuck behind an earlier call."""

END_GRACE = 3.0
"""How long calls still running at the end of the script may take to return."""

ACTION_SETTLE = 0.01
"""Pause between an injected segment and an application call that follows it."""

LINK_MTU = 1500
"""The veth pair's MTU (``two_hosts`` leaves the default)."""


def link_mss(family: Family) -> int:
    """``mss link``: what a stack advertises on the link, its MTU less the IP header
    (20 bytes for IPv4, 40 for IPv6) and the TCP header (RFC 9293 §3.7.1, RFC 8200 §8.3)."""
    return LINK_MTU - (20 if family == 4 else 40) - 20


def family_addresses(host: Host, family: Family) -> tuple[str, str]:
    """``host``'s own address and its peer's, in ``family``."""
    if family == 6:
        if host.address6 is None or host.peer6 is None:
            raise RuntimeError(f"host {host.name} has no IPv6 (two_hosts(ipv6=True))")
        return host.address6, host.peer6
    return host.address, host.peer


PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Stream content in both directions, by offset: reassembly is checked for free."""


def pattern_bytes(offset: int, n: int) -> bytes:
    """``n`` bytes of the stream pattern starting at stream offset ``offset``."""
    return bytes(PATTERN[(offset + i) % len(PATTERN)] for i in range(n))


class ScriptFailed(AssertionError):
    """The endpoint under test did not behave as the script says (at ``lineno``)."""

    def __init__(self, message: str, lineno: int) -> None:
        super().__init__(message)
        self.lineno = lineno


class ActionTimeout(Exception):
    """A blocking application call was still waiting when the script ran out of time."""


# --------------------------------------------------------------------- application side


@dataclass(eq=False)
class Pending:
    """One application call handed to the application side, and its outcome."""

    event: Event
    data: bytes | None = None
    timeout: float = 10.0
    read_offset: int = 0
    """Stream offset of the first byte a ``read`` returns (for the pattern check)."""
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    value: bytes | None = None
    error: BaseException | None = None
    checked: bool = False
    """The director has compared the outcome with the script (once)."""

    @property
    def action(self) -> Action:
        assert self.event.action is not None
        return self.event.action


def errno_name(exc: BaseException) -> str:
    """The errno name a socket call would report for ``exc`` (aiotcp raises the
    builtin subclasses, sometimes without ``errno``; the kernel always sets it)."""
    if isinstance(exc, ActionTimeout):
        return "no result (still blocked)"
    if isinstance(exc, OSError) and exc.errno:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    for kind, name in (
        (ConnectionRefusedError, "ECONNREFUSED"),
        (ConnectionResetError, "ECONNRESET"),
        (ConnectionAbortedError, "ECONNABORTED"),
        (BrokenPipeError, "EPIPE"),
        (TimeoutError, "ETIMEDOUT"),
    ):
        if isinstance(exc, kind):
            return name
    return f"{type(exc).__name__}: {exc}"


class AppSide(ABC):
    """The endpoint under test as the director sees it: a serial queue of calls."""

    @abstractmethod
    def submit(self, pending: Pending) -> None:
        """Queue a call; it runs after every earlier one has finished."""

    @abstractmethod
    def close(self) -> None:
        """Release sockets/connections and stop the worker (bounded, idempotent)."""


# Socket options by TcpOptions name: (level, optname, converter).  Options the kernel
# only has as sysctls are applied as sysctls in host A (each run has a fresh one).
_SOCKOPTS: dict[str, tuple[int, int, Callable[[object], int]]] = {
    "nodelay": (socket.IPPROTO_TCP, socket.TCP_NODELAY, lambda v: int(bool(v))),
    "mss": (socket.IPPROTO_TCP, socket.TCP_MAXSEG, lambda v: int(v)),  # type: ignore[call-overload]
    "recv_buffer": (socket.SOL_SOCKET, socket.SO_RCVBUF, lambda v: int(v) // 2),  # type: ignore[call-overload]
    "send_buffer": (socket.SOL_SOCKET, socket.SO_SNDBUF, lambda v: int(v) // 2),  # type: ignore[call-overload]
    "keepalive": (socket.SOL_SOCKET, socket.SO_KEEPALIVE, lambda v: int(bool(v))),
    "keepalive_idle": (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, lambda v: int(v)),  # type: ignore[call-overload]
    "keepalive_interval": (socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, lambda v: int(v)),  # type: ignore[call-overload]
    "keepalive_count": (socket.IPPROTO_TCP, socket.TCP_KEEPCNT, lambda v: int(v)),  # type: ignore[call-overload]
    "syn_retries": (socket.IPPROTO_TCP, socket.TCP_SYNCNT, lambda v: int(v)),  # type: ignore[call-overload]
    "user_timeout": (socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, lambda v: int(float(v) * 1000)),  # type: ignore[arg-type]
    "fin_wait_2_timeout": (socket.IPPROTO_TCP, socket.TCP_LINGER2, lambda v: int(v)),  # type: ignore[call-overload]
    "oobinline": (socket.SOL_SOCKET, socket.SO_OOBINLINE, lambda v: int(bool(v))),
}
_SYSCTLS: dict[str, str] = {
    "window_scaling": "net.ipv4.tcp_window_scaling",
    "sack": "net.ipv4.tcp_sack",
    "timestamps": "net.ipv4.tcp_timestamps",
    "rfc1337": "net.ipv4.tcp_rfc1337",
    "syn_cookies": "net.ipv4.tcp_syncookies",
    "abort_on_overflow": "net.ipv4.tcp_abort_on_overflow",
}


AIOTCP_FIXED: dict[str, object] = {"oobinline": True}
"""Socket options that are not tunables in aiotcp because it has only one behaviour:
urgent data is always delivered in the stream (RFC 6093 §6, as SO_OOBINLINE)."""


class LinuxApp(AppSide):
    """Kernel sockets in host A, every call made from one worker thread inside A."""

    def __init__(self, host: Host, family: Family) -> None:
        self.host = host
        self.address, self.peer = family_addresses(host, family)
        self.af = socket.AF_INET if family == 4 else socket.AF_INET6
        self.listener: socket.socket | None = None
        self.conn: socket.socket | None = None
        self.options: dict[str, Any] = {}
        self._queue: queue.Queue[Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="conformance-linux", daemon=True)
        self._thread.start()

    def submit(self, pending: Pending) -> None:
        self._queue.put(pending)

    def _work(self) -> None:
        with self.host.entered():
            while (item := self._queue.get()) is not None:
                item.started.set()
                try:
                    item.value = self._perform(item)
                except TimeoutError as exc:  # the socket timeout (no errno), not TCP's
                    item.error = exc if exc.errno else ActionTimeout()
                except BaseException as exc:
                    item.error = exc
                finally:
                    item.done.set()

    def _apply(self, sock: socket.socket, name: str, value: object) -> None:
        if name in _SYSCTLS:
            if sock is self.conn:
                raise ValueError(f"{name} is a sysctl on Linux: set it before connect/listen")
            numeric = int(value) if isinstance(value, bool | int) else value
            sysctl(self.host, _SYSCTLS[name], str(numeric))
            return
        if name not in _SOCKOPTS:
            raise ValueError(f"setopt {name}: no Linux equivalent known")
        level, opt, convert = _SOCKOPTS[name]
        sock.setsockopt(level, opt, convert(value))

    def _perform(self, p: Pending) -> bytes | None:
        act = p.action
        verb = act.verb
        if verb == "setopt":
            assert act.option is not None
            name, value = act.option[0], parse_value(act.option[1])
            if self.conn is not None:
                self._apply(self.conn, name, value)
            else:
                self.options[name] = value
            return None
        if verb == "listen":
            sock = socket.socket(self.af, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for name, value in self.options.items():
                self._apply(sock, name, value)
            sock.bind((self.address, SERVER_PORT))
            sock.listen(act.count if act.count is not None else 128)
            self.listener = sock
            return None
        if verb == "accept":
            if self.listener is None:
                raise RuntimeError("accept before listen")
            self.listener.settimeout(p.timeout)
            self.conn, _ = self.listener.accept()
            return None
        if verb == "connect":
            sock = socket.socket(self.af, socket.SOCK_STREAM)
            self.conn = sock
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            for name, value in self.options.items():
                self._apply(sock, name, value)
            sock.bind((self.address, LOCAL_PORT))
            sock.settimeout(p.timeout)
            sock.connect((self.peer, PEER_PORT))
            return None
        conn = self.conn
        if conn is None:
            raise RuntimeError(f"{verb} without a connection (connect or accept first)")
        conn.settimeout(p.timeout)
        if verb == "write":
            assert p.data is not None
            conn.sendall(p.data)
        elif verb == "read":
            want = 1 if act.eof else (act.count if act.count is not None else len(act.text or b""))
            got = b""
            while len(got) < want and (chunk := conn.recv(want - len(got))):
                got += chunk
            return got
        elif verb == "shutdown":
            conn.shutdown(socket.SHUT_WR)
        elif verb == "close":
            conn.close()
        elif verb == "abort":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        elif verb == "wait":
            pass
        else:
            raise RuntimeError(f"unknown action {verb}")
        return None

    def close(self) -> None:
        for sock in (self.conn, self.listener):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv/accept
                sock.close()
        self._queue.put(None)
        self._thread.join(5.0)


class AiotcpApp(AppSide):
    """aiotcp in host A: the calls run, in order, as one task on the stack's loop."""

    def __init__(self, host: Host, loop: asyncio.AbstractEventLoop, family: Family) -> None:
        self.host = host
        self.address, self.peer = family_addresses(host, family)
        self.loop = loop
        # The script's application holds a socket: Nagle on, as on a kernel socket
        # (the asyncio-facing API turns it off by default, as asyncio does).
        self.options: dict[str, Any] = {"nodelay": False}
        self.server: Any = None
        self.connected_once = False
        self.shut_down = False
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self._accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._queue: asyncio.Queue[Pending] = asyncio.Queue()
        self._task = loop.create_task(self._work())

    def submit(self, pending: Pending) -> None:
        self.loop.call_soon_threadsafe(self._queue.put_nowait, pending)

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            item.started.set()
            try:
                async with asyncio.timeout(item.timeout) as deadline:
                    item.value = await self._perform(item)
            except TimeoutError as exc:
                item.error = ActionTimeout() if deadline.expired() else exc
            except BaseException as exc:
                item.error = exc
                if isinstance(exc, asyncio.CancelledError):
                    item.done.set()
                    raise
            finally:
                item.done.set()

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await self._accepted.put((reader, writer))

    async def _perform(self, p: Pending) -> bytes | None:
        import aiotcp

        act = p.action
        verb = act.verb
        if verb == "setopt":
            assert act.option is not None
            name, value = act.option[0], parse_value(act.option[1])
            if name in AIOTCP_FIXED:
                if value != AIOTCP_FIXED[name]:
                    raise ValueError(f"aiotcp has {name}={AIOTCP_FIXED[name]} only")
                return None
            if self.writer is not None:
                conn = self.writer.transport._driver.conn  # type: ignore[attr-defined]
                conn.options = conn.options.replace(**{name: value})
            else:
                self.options[name] = value
            return None
        if verb == "listen":
            self.server = await aiotcp.start_server(
                self._on_client,
                host=self.address,
                port=SERVER_PORT,
                backlog=act.count if act.count is not None else 128,
                **self.options,
            )
            return None
        if verb == "accept":
            self.reader, self.writer = await self._accepted.get()
            return None
        if verb == "connect":
            # A kernel socket exists from here on, even when connect fails: a
            # ``close`` after ``connect => ECONNREFUSED`` is legal on both stacks.
            self.connected_once = True
            self.reader, self.writer = await aiotcp.open_connection(
                self.peer,
                PEER_PORT,
                local_addr=(self.address, LOCAL_PORT),
                **self.options,
            )
            return None
        if verb == "wait":
            return None
        reader, writer = self.reader, self.writer
        if reader is None or writer is None:
            if verb in ("close", "abort") and self.connected_once:
                return None  # closing the socket of a failed connect
            raise RuntimeError(f"{verb} without a connection (connect or accept first)")
        if verb == "write":
            assert p.data is not None
            try:
                writer.write(p.data)
            except RuntimeError as exc:
                if not self.shut_down:
                    raise
                # asyncio refuses a write after write_eof() with RuntimeError where
                # a socket's send after shutdown(SHUT_WR) fails with EPIPE.
                raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE)) from exc
        elif verb == "read":
            if act.eof:
                return await reader.read(1)
            want = act.count if act.count is not None else len(act.text or b"")
            try:
                return await reader.readexactly(want)
            except asyncio.IncompleteReadError as exc:
                return exc.partial
        elif verb == "shutdown":
            writer.write_eof()
            self.shut_down = True
        elif verb == "close":
            writer.close()
        elif verb == "abort":
            # As on Linux: SO_LINGER {1, 0}, then close (transport.abort() is
            # asyncio's, which closes the way close(2) does).
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
        else:
            raise RuntimeError(f"unknown action {verb}")
        return None

    def close(self) -> None:
        """Called on the loop: stop the worker, drop connections and the listener."""
        self._task.cancel()
        if self.writer is not None:
            self.writer.transport.abort()
        if self.server is not None:
            self.server.close()


# ----------------------------------------------------------------------------- director


@dataclass
class Director:
    """Walks a script's timeline from the peer's thread (host B)."""

    script: Script
    ep: ScriptedEndpoint
    app: AppSide
    family: Family = 4
    peer_stream: dict[int, int] = field(default_factory=dict)
    """Bytes the peer injected with a literal payload, by stream offset."""
    app_out: bytearray = field(default_factory=bytearray)
    """Everything the application wrote, in order: what ``>`` payloads must carry."""
    app_in: int = 0
    """Stream offset of the next byte the application will read."""
    pendings: list[Pending] = field(default_factory=list)
    peer_wscale: int | None = None
    """Window scale the peer's SYN offered (``None``: not offered)."""

    def __post_init__(self) -> None:
        self.ep.iss = self.script.peer_isn
        self.t0 = self.last = time.monotonic()
        self.deadline = self.t0 + self.script.timeout
        self._src = ipaddress.ip_address(self.ep.local[0]).packed
        self._dst = ipaddress.ip_address(self.ep.remote[0]).packed
        self.link_mss = link_mss(self.family)

    # -- helpers --------------------------------------------------------------------
    def fail(self, event: Event, message: str) -> ScriptFailed:
        return ScriptFailed(
            f"line {event.lineno}: {event.text}\n{message}\n{self.ep.format_transcript()}",
            event.lineno,
        )

    def their(self, rel: int) -> int:
        """Absolute number for a value relative to the endpoint under test's ISN."""
        return self.ep.rcv(rel) if self.ep.irs is not None else rel & 0xFFFFFFFF

    def due(self, event: Event) -> float | None:
        t = event.timing
        if t.value is None:
            return None
        return (self.last if t.relative else self.t0) + t.value

    def window_edge(self, event: Event) -> int:
        """Right edge of the last window the endpoint under test offered, relative to
        the peer's ISN: its last ACK plus its window, scaled (RFC 7323 §2.3) unless
        carried by a SYN or window scaling was not negotiated by both SYNs."""
        syns = [seg for seg in self.ep.received if seg.flags & SYN]
        shift = (syns[-1].wscale or 0) if syns and self.peer_wscale is not None else 0
        for seg in reversed(self.ep.received):
            if seg.flags & ACK:
                window = seg.window if seg.flags & SYN else seg.window << shift
                return seq_sub(seg.ack, self.script.peer_isn) + window
        raise self.fail(event, "  'edge': the endpoint under test has not sent an ACK yet")

    def last_ts_val(self) -> int:
        """The newest TS val the endpoint under test sent (for ``TS val V ecr *``)."""
        for seg in reversed(self.ep.received):
            if seg.ts_val is not None:
                return seg.ts_val
        return 0

    def peer_byte(self, offset: int) -> int:
        return self.peer_stream.get(offset, PATTERN[offset % len(PATTERN)])

    # -- the timeline ----------------------------------------------------------------
    def run(self) -> None:
        """Play every event in order; raises ``ScriptFailed`` at the first mismatch."""
        injected = False
        for event in self.script.events:
            self.check_finished()
            if time.monotonic() > self.deadline:
                raise self.fail(event, f"script timeout ({self.script.timeout:g} s) reached")
            at = self.due(event)
            if at is not None and event.expect is None:
                time.sleep(max(0.0, at - time.monotonic()))
            if event.inject is not None:
                self.inject(event, event.inject)
            elif event.expect is not None:
                self.expect(event, event.expect, at)
            elif event.silence is not None:
                try:
                    self.ep.expect_silence(event.silence)
                except AssertionError as exc:
                    raise self.fail(event, str(exc).split("\ntranscript")[0]) from None
                self.last = time.monotonic()
            elif event.action is not None:
                if injected:
                    # The kernel handles an injected segment before the injecting
                    # send returns; a user-space stack one loop iteration later.
                    # An application call right after must not overtake it.
                    time.sleep(ACTION_SETTLE)
                self.act(event, event.action)
            injected = event.inject is not None
        self.finish()

    def inject(self, event: Event, spec: SegmentSpec) -> None:
        """Send a ``<`` segment, encoded here rather than by ``Segment``'s codec so a
        script controls option order and can send what the codec never would
        (illegal lengths, reserved bits, a bad checksum)."""
        assert isinstance(spec.seq, int)
        rel = spec.seq + (self.window_edge(event) if spec.from_edge else 0)
        seq = self.ep.snd(rel)
        ack = self.their(spec.ack) if isinstance(spec.ack, int) else 0
        length = spec.length if isinstance(spec.length, int) else 0
        first = rel - 1 + (1 if spec.flags & SYN else 0)  # stream offset of byte 0
        if spec.payload is not None:
            payload = spec.payload
            for i, byte in enumerate(payload):
                self.peer_stream[first + i] = byte
        else:
            payload = bytes(self.peer_byte(first + i) for i in range(length))
        seg = Segment(
            self.ep.local[1],
            self.ep.remote[1],
            seq,
            ack,
            spec.flags,
            spec.win if isinstance(spec.win, int) else 65535,
            spec.urg if isinstance(spec.urg, int) else 0,
            payload,
        )
        opts = self.encode_options(seg, spec.options or ())
        data = bytearray(20 + len(opts) + len(payload))
        HEADER.pack_into(
            data,
            0,
            seg.src_port,
            seg.dst_port,
            seg.seq,
            seg.ack,
            ((20 + len(opts)) // 4) << 4 | (spec.reserved & 0x0F),
            seg.flags,
            seg.window,
            0,
            seg.urgent,
        )
        data[20 : 20 + len(opts)] = opts
        data[20 + len(opts) :] = payload
        csum = checksum.tcp_checksum(self._src, self._dst, data)
        if spec.bad_checksum:
            csum ^= 0x5A5A
        struct.pack_into("!H", data, 16, csum)
        now = time.monotonic()
        self.ep.mark = self.last = now
        self.ep.transcript.append((now, ">", seg))
        self.ep.raw.send(bytes(data), self._src, self._dst)

    def encode_options(self, seg: Segment, options: Iterable[OptionSpec]) -> bytes:
        """Options in the order written; fields also set on ``seg`` for the transcript."""
        out = bytearray()
        for opt in options:
            if opt.kind == "nop":
                out.append(1)
            elif opt.kind == "eol":
                out.append(0)
            elif opt.kind == "mss":
                mss = self.link_mss if opt.value == LINK else opt.value
                assert isinstance(mss, int)
                seg.mss = mss
                out += struct.pack("!BBH", 2, 4, mss)
            elif opt.kind == "wscale":
                assert isinstance(opt.value, int)
                seg.wscale = opt.value
                if seg.flags & SYN:
                    self.peer_wscale = opt.value
                out += bytes((3, 3, opt.value))
            elif opt.kind == "sackOK":
                seg.sack_permitted = True
                out += bytes((4, 2))
            elif opt.kind == "TS":
                assert isinstance(opt.value, int)
                ecr = opt.ts_ecr if isinstance(opt.ts_ecr, int) else self.last_ts_val()
                seg.ts_val, seg.ts_ecr = opt.value, ecr
                out += struct.pack("!BBII", 8, 10, opt.value, ecr)
            elif opt.kind == "sack":
                blocks = tuple((self.their(lo), self.their(hi)) for lo, hi in opt.blocks)
                seg.sack_blocks = blocks
                out += bytes((5, 2 + 8 * len(blocks)))
                for lo, hi in blocks:
                    out += struct.pack("!II", lo, hi)
            else:  # kind / bytes: verbatim
                seg.unknown_options += 1
                out += opt.raw
        out += bytes(-len(out) % 4)  # pad with EOL to a 32-bit boundary
        if len(out) > 40:
            raise ValueError(f"options are {len(out)} bytes (at most 40)")
        return bytes(out)

    def expect(self, event: Event, spec: SegmentSpec, at: float | None) -> None:
        """Match the next segment against a ``>`` line with ``expect_segment`` (its
        field-by-field diff), then check what it cannot express: optional flags, the
        relative ISN of a SYN, options present with any value, and the payload bytes."""
        kw: dict[str, Any] = {}
        if not spec.optional_flags:
            kw["flags"] = spec.flags
        if isinstance(spec.ack, int):
            kw["ack"] = self.ep.snd(spec.ack)
        if isinstance(spec.win, int):
            kw["win"] = spec.win
        if isinstance(spec.urg, int):
            kw["urgent"] = spec.urg
        if isinstance(spec.length, int):
            kw["length"] = spec.length
        if spec.payload is not None:
            kw["payload"] = spec.payload
        syn = bool(spec.flags & SYN)
        if isinstance(spec.seq, int) and not syn and self.ep.irs is not None:
            kw["seq"] = self.ep.rcv(spec.seq)
        elif isinstance(spec.seq, int) and not syn:
            kw["seq"] = spec.seq & 0xFFFFFFFF  # no SYN seen: absolute (RST to a SYN)
        present = self.option_checks(spec, kw)
        if at is not None:
            tol = (
                event.timing.tolerance
                if event.timing.tolerance is not None
                else self.script.tolerance
            )
            base = self.last if event.timing.relative else self.t0
            value = at - base
            kw["within"] = (max(0.0, value - tol), value + tol)
            timeout = max(0.05, at + tol + 0.05 - time.monotonic())
        else:
            base = self.last
            timeout = UNTIMED_EXPECT_TIMEOUT
        self.ep.mark = base
        try:
            seg = self.ep.expect_segment(timeout=timeout, **kw)
        except AssertionError as exc:
            raise ScriptFailed(f"line {event.lineno}: {event.text}\n{exc}", event.lineno) from None
        self.last = self.ep.last_arrival
        problems = []
        if spec.optional_flags and seg.flags & ~spec.optional_flags != spec.flags:
            problems.append(
                f"  flags: expected [{flags_str(spec.flags)}] (+ optional "
                f"[{flags_str(spec.optional_flags)}]), got [{flags_str(seg.flags)}]"
            )
        if syn and isinstance(spec.seq, int) and self.ep.irs is not None:
            rel = seq_sub(seg.seq, self.ep.irs)
            if rel != spec.seq:
                problems.append(f"  seq: expected {spec.seq} (relative), got {rel}")
        for name in present:
            if getattr(seg, name) in (None, False):
                problems.append(f"  {name}: expected present (any value), got absent")
        if spec.payload is None and seg.payload and self.ep.irs is not None:
            first = seq_sub(seg.seq, self.ep.irs) - 1 + (1 if seg.flags & SYN else 0)
            wrote = bytes(self.app_out[first : first + len(seg.payload)])
            if first < 0 or wrote != bytes(seg.payload):
                problems.append(
                    f"  payload: expected the application's bytes {first}.."
                    f"{first + len(seg.payload)} {_short(wrote)}, got {_short(bytes(seg.payload))}"
                )
        if problems:
            line = tcpdump_line(self._dst, seg.src_port, self._src, seg.dst_port, seg)
            raise self.fail(event, f"     got {line}\n" + "\n".join(problems))

    def option_checks(self, spec: SegmentSpec, kw: dict[str, Any]) -> list[str]:
        """Fill ``kw`` with the option checks of ``spec``; returns options whose value is
        ``*`` (checked afterwards for presence: ``expect_segment`` has no "present")."""
        if spec.options is None:
            return []
        present: list[str] = []
        if not spec.options_open:
            kw.update(mss=None, wscale=None, sack_permitted=False, sack=[], ts_val=None)
        for opt in spec.options:
            if opt.kind in ("mss", "wscale"):
                if opt.value == STAR:
                    kw.pop(opt.kind, None)
                    present.append(opt.kind)
                else:
                    kw[opt.kind] = self.link_mss if opt.value == LINK else opt.value
            elif opt.kind == "sackOK":
                kw["sack_permitted"] = True
            elif opt.kind == "TS":
                if opt.value == STAR:
                    kw.pop("ts_val", None)
                    present.append("ts_val")
                else:
                    kw["ts_val"] = opt.value
                if opt.ts_ecr != STAR:
                    kw["ts_ecr"] = opt.ts_ecr
            elif opt.kind == "sack":
                kw["sack"] = [(self.ep.snd(lo), self.ep.snd(hi)) for lo, hi in opt.blocks]
        return present

    def act(self, event: Event, action: Action) -> None:
        """Hand an application call over and wait until it has finished (or, for a
        call that may block on the network, started), so that what follows in the
        timeline really happens after it."""
        remaining = max(0.5, self.deadline - time.monotonic())
        pending = Pending(event, timeout=remaining)
        if action.verb == "write":
            data = (
                action.text
                if action.text is not None
                else pattern_bytes(len(self.app_out), action.count or 0)
            )
            pending.data = data
            self.app_out += data
        elif action.verb == "read":
            pending.read_offset = self.app_in
            if not action.eof:
                self.app_in += action.count if action.count is not None else len(action.text or b"")
        self.last = time.monotonic()
        self.app.submit(pending)
        self.pendings.append(pending)
        if action.verb == "wait":
            for p in self.pendings:
                self.wait_done(p, remaining)
            return
        ready = pending.started if action.blocking else pending.done
        if not ready.wait(START_TIMEOUT):
            blocked = [p for p in self.pendings if p.started.is_set() and not p.done.is_set()]
            behind = f" (blocked behind line {blocked[0].event.lineno})" if blocked else ""
            raise self.fail(
                event,
                f"the application call did not {'start' if action.blocking else 'finish'}{behind}",
            )
        self.check_finished()

    def wait_done(self, p: Pending, timeout: float) -> None:
        if not p.done.wait(max(0.0, min(timeout, self.deadline + 1.0 - time.monotonic()))):
            raise self.fail(p.event, "the application call never returned")
        self.check(p)

    def check_finished(self) -> None:
        for p in self.pendings:
            if p.done.is_set():
                self.check(p)

    def check(self, p: Pending) -> None:
        """Compare a finished call's outcome (errno, bytes read) with its line."""
        if p.checked:
            return
        p.checked = True
        act = p.action
        if act.error == "*":
            return
        if act.error is not None:
            outcome = "success" if p.error is None else errno_name(p.error)
            if outcome != act.error:
                raise self.fail(
                    p.event, f"  expected the call to fail with {act.error}, got {outcome}"
                )
            return
        if p.error is not None:
            detail = "".join(traceback.format_exception_only(p.error)).strip()
            raise self.fail(p.event, f"  the call failed: {errno_name(p.error)} ({detail})")
        if act.verb != "read":
            return
        got = p.value or b""
        if act.eof:
            want = b""
        elif act.text is not None:
            want = act.text
        else:
            n = act.count or 0
            want = bytes(self.peer_byte(p.read_offset + i) for i in range(n))
        if got != want:
            raise self.fail(p.event, f"  read: expected {_short(want)}, got {_short(got)}")

    def finish(self) -> None:
        """Every call must have returned (within END_GRACE), except ``=> *`` ones."""
        for p in self.pendings:
            if p.action.error != "*":
                self.wait_done(p, END_GRACE)


def _short(data: bytes) -> str:
    text = repr(data[:40])
    return text + (f"... ({len(data)} bytes)" if len(data) > 40 else f" ({len(data)} bytes)")


# ------------------------------------------------------------------------------ running


@dataclass(frozen=True)
class RunResult:
    """One script on one stack.

    ``passed``: the script's expectations held.  ``expected``: what they should do
    (False only for Linux on an ``expect-linux: differs`` script, which must then
    fail exactly at the line marked ``!``, so an unrelated Linux failure is caught).
    """

    script: str
    stack: StackKind
    passed: bool
    expected: bool
    detail: str = ""
    seconds: float = 0.0
    reason: str = ""
    """The declared difference, if any."""
    failed_line: int | None = None
    differs_line: int | None = None
    family: Family = 4
    """4 or 6: the address family the run used (last, so results saved before
    IPv6 runs existed still load, as IPv4 ones)."""

    @property
    def ok(self) -> bool:
        if self.expected:
            return self.passed
        return not self.passed and self.failed_line == self.differs_line

    @property
    def verdict(self) -> str:
        if self.passed:
            return "pass" if self.expected else "UNEXPECTED PASS"
        if self.expected:
            return "FAIL"
        if self.failed_line == self.differs_line:
            return "differs (as declared)"
        return f"FAIL (line {self.failed_line}, not {self.differs_line})"


def run_script(
    script: Script, stack: StackKind, family: Family = 4, *, subnet: int = 0
) -> RunResult:
    """Run ``script`` with the application side on ``stack`` in fresh namespaces,
    over ``family`` (which must be one of the script's)."""
    if family not in script.families:
        raise ValueError(f"{script.name} runs over IPv{script.families[0]} only")
    expected = stack == "aiotcp" or script.oracle_linux
    start = time.monotonic()
    try:
        with two_hosts(prefix="cf", subnet=subnet, offload=False, ipv6=family == 6) as (a, b):
            if stack == "linux":
                for key, value in script.linux_sysctls.items():
                    sysctl(a, key, value)
            with a.entered(), asyncio.Runner() as runner:
                runner.run(_main(script, stack, family, a, b))
        passed, detail, failed_line = True, "", None
    except ScriptFailed as exc:
        passed, detail, failed_line = False, str(exc), exc.lineno
    except Exception as exc:
        passed, detail = False, "".join(traceback.format_exception(exc))
        failed_line = None
    return RunResult(
        script.name,
        stack,
        passed,
        expected,
        detail,
        time.monotonic() - start,
        script.differs_reason,
        failed_line,
        script.differs_line,
        family,
    )


async def _main(script: Script, stack: StackKind, family: Family, a: Host, b: Host) -> None:
    remote = (family_addresses(a, family)[0], SERVER_PORT if script.listens else LOCAL_PORT)
    if stack == "aiotcp":
        from aiotcp.stack import Stack

        async with Stack(guard="socket", **script.aiotcp_options):
            app: AppSide = AiotcpApp(a, asyncio.get_running_loop(), family)
            try:
                await _drive(script, app, family, b, remote)
            finally:
                app.close()
    else:
        app = LinuxApp(a, family)
        try:
            await _drive(script, app, family, b, remote)
        finally:
            await asyncio.to_thread(app.close)


async def _drive(
    script: Script, app: AppSide, family: Family, b: Host, remote: tuple[str, int]
) -> None:
    def direct(ep: ScriptedEndpoint) -> None:
        Director(script, ep, app, family).run()

    local = family_addresses(b, family)[0]
    peer = await start_peer(b, PEER_PORT, remote, direct, address=local)
    await while_peer_runs(peer, peer, timeout=script.timeout + 10.0)


def _job(path: str, root: str | None, stack: StackKind, family: Family, subnet: int) -> RunResult:
    script = load_script(Path(path), Path(root) if root else None)
    return run_script(script, stack, family, subnet=subnet)


def _estimate(path: Path) -> float:
    """Rough duration of a script: its waits (timed lines and silences), in seconds."""
    try:
        script = load_script(path)
    except (OSError, ValueError):
        return 0.0
    return sum((e.timing.value or 0.0) + (e.silence or 0.0) for e in script.events)


Job = tuple[Path, StackKind, Family]
"""One run: a script, the stack under test, the address family."""


def run_many(
    jobs: Iterable[Job],
    *,
    root: Path | None = None,
    workers: int = 4,
    on_result: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Run (script path, stack, family) jobs in ``workers`` processes; results in job order.

    Processes, not threads: each run's peer, director and (for aiotcp) event loop
    then have a GIL of their own, so one run's work does not skew another's timing.
    """
    todo = list(jobs)
    # Longest first, so the few multi-second scripts do not end up as the tail.
    order = sorted(range(len(todo)), key=lambda i: -_estimate(todo[i][0]))
    ctx = multiprocessing.get_context("spawn")
    results: dict[int, RunResult] = {}
    with concurrent.futures.ProcessPoolExecutor(max(1, workers), mp_context=ctx) as pool:
        futures = {
            pool.submit(
                _job, str(todo[i][0]), str(root) if root else None, *todo[i][1:], i % 200
            ): i
            for i in order
        }
        for fut in concurrent.futures.as_completed(futures):
            i = futures[fut]
            try:
                result = fut.result()
            except Exception as exc:  # the worker died: report, never hang
                path, stack, family = todo[i]
                result = RunResult(
                    str(path), stack, False, True, f"worker failed: {exc!r}", family=family
                )
            results[i] = result
            if on_result is not None:
                on_result(result)
    return [results[i] for i in range(len(todo))]
