"""Two-host test networks built from Linux network namespaces and a veth pair.

Tests, benchmarks and demos need a real wire between two IP hosts without touching
the machine's own network: each :class:`Host` is a network namespace with one end of a
veth pair, addressed in 198.18.0.0/15 (RFC 2544 benchmarking space, never routed).
Everything created here is removed in ``finally`` blocks, so a failing or interrupted
test leaves nothing behind; :func:`cleanup_stale` removes what a killed run left.

Code reaches into a namespace three ways: a subprocess (:meth:`Host.run`,
:meth:`Host.popen` via ``ip netns exec``), the calling thread (:meth:`Host.entered`,
``setns(2)``; sockets created inside stay in that namespace for their whole life), or a
helper thread (:meth:`Host.call`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import itertools
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from aiotcp.core.checksum import internet_checksum

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
NETNS_RUN_DIR = Path("/run/netns")
SUBNET_PREFIX = "198.18"
"""First two octets of every address the harness hands out (inside 198.18.0.0/15)."""

_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


def is_root() -> bool:
    """True when namespaces, raw sockets and iptables are usable (effective uid 0)."""
    return os.geteuid() == 0


def require_root() -> None:
    """Skip the calling test without root; fail it instead when ``CI=true``.

    Locally, root-only tests skipping is expected. In CI a skip would turn "the
    interop tests never ran" into a green build, so there it is an error.
    """
    import pytest  # only tests call this; keep pytest out of the library's imports

    if is_root():
        return
    reason = "needs root (network namespaces, raw sockets, iptables); run as root"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip(*args: str) -> None:
    """Run one ``ip`` command on the host side, raising with its stderr on failure."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {proc.stderr.strip()}")


@dataclass(eq=False)
class Host:
    """One end of the test link: a network namespace with a single veth interface.

    ``address`` is this host's IPv4 address and ``peer`` the address of the other end,
    so a test can write ``a.call(socket.create_connection, (a.peer, 80))``.
    """

    name: str
    netns: str
    address: str
    ifname: str
    peer: str
    prefixlen: int = 24
    address6: str | None = None
    """This host's IPv6 address, when the link has IPv6 (``two_hosts(ipv6=True)``)."""
    peer6: str | None = None
    _procs: list[subprocess.Popen[Any]] = field(default_factory=list, init=False, repr=False)

    def address_of(self, family: str) -> str:
        """This host's address in ``family`` ("ipv4" or "ipv6")."""
        if family == "ipv6":
            if self.address6 is None:
                raise ValueError(f"host {self.name} has no IPv6 address (two_hosts(ipv6=True))")
            return self.address6
        return self.address

    def _wrap(self, cmd: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *cmd]

    def run(self, cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[Any]:
        """Run ``cmd`` to completion inside the namespace.

        Defaults differ from :func:`subprocess.run` on purpose: ``check=True``,
        captured text output and a 60 s timeout, so a broken command fails the test
        loudly instead of hanging it. Override any of them through ``kw``.
        """
        kw.setdefault("check", True)
        kw.setdefault("timeout", 60)
        if "stdout" not in kw and "stderr" not in kw:
            kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(self._wrap(cmd), **kw)

    def popen(self, cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start ``cmd`` inside the namespace; it is killed when the host is torn down.

        The child gets its own session so teardown can kill it and its children by
        process group without touching anything else, and a parent-death signal so
        it also dies if this process is killed before teardown can run. Linux ties
        that signal to the *thread* that forks: start long-lived processes from a
        long-lived thread (not from inside :meth:`call`), or pass ``preexec_fn=None``.
        """
        kw.setdefault("start_new_session", True)
        kw.setdefault("preexec_fn", _die_with_parent)
        proc: subprocess.Popen[Any] = subprocess.Popen(self._wrap(cmd), **kw)
        self._procs.append(proc)
        return proc

    def python(self, args: list[str], **kw: Any) -> subprocess.Popen[Any]:
        """Start this interpreter (``python args...``) inside the namespace."""
        return self.popen([sys.executable, *args], **kw)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Move the calling thread into the namespace for the ``with`` block.

        ``setns`` is per thread: other threads (the event loop's, if different) are
        unaffected. Sockets created inside keep this namespace after the block;
        subprocesses started inside inherit it. The original namespace is restored
        from a saved fd even if the block raises.
        """
        with (
            open("/proc/thread-self/ns/net", "rb") as orig,
            open(NETNS_RUN_DIR / self.netns, "rb") as target,
        ):
            _setns(target.fileno())
            try:
                yield
            finally:
                _setns(orig.fileno())

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = 60.0) -> T:
        """Run ``fn(*args)`` in a fresh thread inside the namespace; return or re-raise.

        Safe from a thread running an event loop for short calls (it blocks the
        caller), e.g. to create a kernel socket that then lives in the namespace.
        """
        box: dict[str, Any] = {}

        def runner() -> None:
            try:
                with self.entered():
                    box["result"] = fn(*args)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=runner, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"{fn!r} did not return within {timeout}s in {self.netns}")
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    def connect(self, addr: str, port: int, timeout: float = 5.0) -> socket.socket:
        """Open a kernel TCP connection from this host (the socket stays in the netns)."""
        return self.call(socket.create_connection, (addr, port), timeout)

    def listen(self, port: int, addr: str | None = None, backlog: int = 128) -> socket.socket:
        """Create a listening kernel TCP socket in this host (ready on return): on
        every address by default, of both families where the host has IPv6."""
        if addr is None:
            addr = "0.0.0.0" if self.address6 is None else "::"
        return self.call(_listening_socket, addr, port, backlog)

    def stop(
        self, proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 3.0
    ) -> tuple[str, str]:
        """Stop one process started here: ``sig`` to its group, SIGKILL after ``timeout``.

        Returns what was left on its stdout and stderr pipes (empty if not piped), so
        helpers can print a summary on the way out.
        """
        _signal_group(proc, sig)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            out, err = proc.communicate(timeout=5.0)
        finally:
            _close_pipes(proc)
            with contextlib.suppress(ValueError):
                self._procs.remove(proc)
        return _text(out), _text(err)

    def kill_processes(self) -> None:
        """Stop every process started through this host (teardown)."""
        for proc in list(self._procs):
            self.stop(proc)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL us when the parent goes (PR_SET_PDEATHSIG)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _signal_group(proc: subprocess.Popen[Any], sig: int) -> None:
    """Signal the process group we created for ``proc`` (by its id, nothing broader)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _text(data: str | bytes | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _close_pipes(proc: subprocess.Popen[Any]) -> None:
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _listening_socket(addr: str, port: int, backlog: int) -> socket.socket:
    """IPv4, or for an IPv6 address both families (``::``: a dual-stack socket)."""
    sock = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sock.family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


# --------------------------------------------------------------------------- setup


def _unique_token() -> str:
    return f"{os.getpid()}-{next(_counter)}-{random.randbytes(2).hex()}"


def subnet_address(index: int, host: int) -> str:
    """Address ``198.18.<index>.<host>``; ``index`` lets parallel pairs use own /24s."""
    if not 0 <= index <= 255 or not 1 <= host <= 254:
        raise ValueError(f"subnet index {index} / host {host} outside 198.18.0.0/16")
    return f"{SUBNET_PREFIX}.{index}.{host}"


def sysctl(host: Host, key: str, value: str) -> None:
    """Set a per-namespace sysctl (``net.*``) in ``host`` without a subprocess.

    ``/proc/sys/net`` resolves to the namespace of the thread that opens the file.
    """
    path = Path("/proc/sys") / key.replace(".", "/")
    host.call(path.write_text, value)


def steer_receive(host: Host, cpu: int) -> None:
    """Run ``host``'s receive processing on ``cpu`` (RPS on its veth's one queue).

    A veth hands a packet to its peer inside the sender's ``sendmsg``, and the
    peer's whole receive path (IP, TCP, the socket's wake-up) runs in the softirq
    that follows on the *sender's* CPU.  With one process per CPU that bills each
    host's receive work to the other one; steering each host's queue to its own
    process's CPU makes the pair behave like two machines.
    """
    path = f"/sys/class/net/{host.ifname}/queues/rx-0/rps_cpus"
    host.run(["sh", "-c", f"echo {1 << cpu:x} > {path}"])  # sysfs as the namespace sees it


IPV6_PREFIX = "fd00:198:18"
"""Unique-local (RFC 4193) addresses for the tests' IPv6: ``fd00:198:18:<subnet>::<host>``."""


def subnet_address6(index: int, host: int) -> str:
    if not 0 <= index <= 0xFFFF or not 1 <= host <= 0xFFFF:
        raise ValueError(f"subnet index {index} / host {host} outside {IPV6_PREFIX}::/48")
    return str(ipaddress.IPv6Address(f"{IPV6_PREFIX}:{index:x}::{host:x}"))  # RFC 5952 text


@contextlib.contextmanager
def two_hosts(
    prefix: str = "at", *, subnet: int = 0, offload: bool = True, ipv6: bool = False
) -> Iterator[tuple[Host, Host]]:
    """Yield hosts A (198.18.<subnet>.1) and B (.2) joined by a veth pair.

    Names are ``<prefix>-<pid>-<counter>-<random>-a|b`` so parallel runs never clash
    and :func:`cleanup_stale` can tell a dead run's leftovers by the pid. The veth ends
    are created directly inside the namespaces, so they never appear in the root
    namespace. IPv6 is disabled inside to keep captures free of router solicitations.
    ``offload=False`` turns off TSO/GSO/GRO (needs ethtool) so captures show wire-sized
    segments. Teardown kills processes started through the hosts, then deletes both
    namespaces (which removes the veth pair and every iptables rule inside them).
    ``ipv6=True`` keeps IPv6 on and gives the hosts ``fd00:198:18:<subnet>::1`` and
    ``::2`` as well (``address6``/``peer6``), usable at once (no duplicate address
    detection to wait for).
    """
    if not prefix or "-" in prefix:
        raise ValueError(f"prefix must be non-empty without '-': {prefix!r}")
    token = _unique_token()
    ns_a, ns_b = f"{prefix}-{token}-a", f"{prefix}-{token}-b"
    short = random.randbytes(3).hex()
    if_a, if_b = f"{prefix[:7]}{short}a", f"{prefix[:7]}{short}b"
    addr_a, addr_b = subnet_address(subnet, 1), subnet_address(subnet, 2)
    a = Host(name="a", netns=ns_a, address=addr_a, ifname=if_a, peer=addr_b)
    b = Host(name="b", netns=ns_b, address=addr_b, ifname=if_b, peer=addr_a)
    if ipv6:
        a.address6, b.address6 = subnet_address6(subnet, 1), subnet_address6(subnet, 2)
        a.peer6, b.peer6 = b.address6, a.address6
    created: list[str] = []
    try:
        for host in (a, b):
            created.append(host.netns)  # before creating: an interrupt still deletes it
            _ip("netns", "add", host.netns)
            for key in ("all", "default"):
                sysctl(host, f"net.ipv6.conf.{key}.disable_ipv6", "0" if ipv6 else "1")
            if ipv6:  # no router solicitations in captures either way
                sysctl(host, "net.ipv6.conf.default.router_solicitations", "0")
                # No duplicate address detection for the link-local address either:
                # while it is tentative, it cannot be used (~1 s).
                sysctl(host, "net.ipv6.conf.default.accept_dad", "0")
        _ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)
        for host in (a, b):
            cidr = f"{host.address}/{host.prefixlen}"
            _ip("-n", host.netns, "addr", "add", cidr, "dev", host.ifname)
            if host.address6 is not None:
                six = f"{host.address6}/64"
                _ip("-n", host.netns, "addr", "add", six, "dev", host.ifname, "nodad")
            _ip("-n", host.netns, "link", "set", host.ifname, "up")
            _ip("-n", host.netns, "link", "set", "lo", "up")
            if not offload:
                host.run(["ethtool", "-K", host.ifname, "tso", "off", "gso", "off", "gro", "off"])
        if ipv6:
            for host in (a, b):
                wait_ipv6_ready(host.netns, host.ifname)
        yield a, b
    finally:
        for host in (a, b):
            host.kill_processes()
        for ns in created:
            _delete_netns(ns)


def wait_ipv6_ready(netns: str, ifname: str, timeout: float = 3.0) -> None:
    """Wait until IPv6 runs on ``ifname``: the kernel starts it (link-local address,
    multicast routes) only once the link's carrier change has gone through its
    deferred link-watch work, up to a second after "up" on a veth.  Before that a
    neighbour solicitation goes unanswered and the first connection waits out a
    one-second retransmission."""

    def started() -> bool:
        proc = subprocess.run(
            ["ip", "-n", netns, "-6", "-o", "addr", "show", "dev", ifname, "scope", "link"],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return "fe80::" in proc.stdout

    if not poll_until(started, timeout):
        raise RuntimeError(f"IPv6 did not start on {ifname} in {netns} within {timeout}s")


def poll_until(condition: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Whether ``condition()`` came true within ``timeout`` seconds, asked every
    ``interval``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


@dataclass
class Routed:
    """Hosts A and B on two links joined by router R (``routed_hosts``)."""

    a: Host
    r: Host
    """The router; ``r.address`` faces A, ``r.ifname`` is its interface towards B."""
    b: Host


@contextlib.contextmanager
def routed_hosts(
    prefix: str = "ar", *, far_mtu: int | None = None, ipv6: bool = False
) -> Iterator[Routed]:
    """A (198.18.0.1) – R (198.18.0.2 | 198.18.1.1) – B (198.18.1.2), forwarding on R.

    A and B route everything through R, so a test can make R answer for the path:
    ``ip route add unreachable|prohibit`` on R sends ICMP unreachables, an address
    R has no route to gets "network unreachable", and ``far_mtu`` lowers the MTU of
    R's interface towards B alone, so A's full-size segments (DF set) draw
    "fragmentation needed" while both ends still announce a 1460-byte MSS.

    ``ipv6=True`` adds fd00:198:18::1 – R (::2 | fd00:198:18:1::1) – fd00:198:18:1::2
    (``address6``; ``r.address6`` faces A), R forwarding IPv6 too: the same routes
    and rules draw ICMPv6 errors, and ``far_mtu`` (at least 1280, IPv6's minimum
    link MTU) a Packet Too Big.  No duplicate address detection, so every address
    works at once, link-local ones included (neighbour discovery uses those).
    """
    if ipv6 and far_mtu is not None and far_mtu < 1280:
        raise ValueError(f"far_mtu {far_mtu} is below IPv6's minimum link MTU (1280)")
    token = _unique_token()
    short = random.randbytes(3).hex()
    a = Host("a", f"{prefix}-{token}-a", subnet_address(0, 1), f"{prefix[:6]}{short}a", "")
    r = Host("r", f"{prefix}-{token}-r", subnet_address(0, 2), f"{prefix[:6]}{short}rb", "")
    b = Host("b", f"{prefix}-{token}-b", subnet_address(1, 2), f"{prefix[:6]}{short}b", "")
    a.peer, b.peer, r.peer = b.address, a.address, b.address
    if ipv6:
        a.address6, r.address6, b.address6 = (
            subnet_address6(0, 1),
            subnet_address6(0, 2),
            subnet_address6(1, 2),
        )
        a.peer6, b.peer6, r.peer6 = b.address6, a.address6, b.address6
    r_to_a = f"{prefix[:6]}{short}ra"
    created: list[str] = []
    try:
        for host in (a, r, b):
            created.append(host.netns)
            _ip("netns", "add", host.netns)
            for key in ("all", "default"):
                sysctl(host, f"net.ipv6.conf.{key}.disable_ipv6", "0" if ipv6 else "1")
                if ipv6:
                    sysctl(host, f"net.ipv6.conf.{key}.accept_dad", "0")
                    sysctl(host, f"net.ipv6.conf.{key}.router_solicitations", "0")
            _ip("-n", host.netns, "link", "set", "lo", "up")
        sysctl(r, "net.ipv4.ip_forward", "1")
        if ipv6:
            sysctl(r, "net.ipv6.conf.all.forwarding", "1")
        _ip("link", "add", a.ifname, "netns", a.netns, "type", "veth", "peer", "name", r_to_a,
            "netns", r.netns)  # fmt: skip
        _ip("link", "add", r.ifname, "netns", r.netns, "type", "veth", "peer", "name", b.ifname,
            "netns", b.netns)  # fmt: skip
        links = [(a, a.ifname, 0, 1), (r, r_to_a, 0, 2), (r, r.ifname, 1, 1), (b, b.ifname, 1, 2)]
        for host, ifname, subnet, number in links:
            four = subnet_address(subnet, number)
            _ip("-n", host.netns, "addr", "add", f"{four}/24", "dev", ifname)
            if ipv6:
                six = subnet_address6(subnet, number)
                _ip("-n", host.netns, "addr", "add", f"{six}/64", "dev", ifname, "nodad")
            _ip("-n", host.netns, "link", "set", ifname, "up")
        if far_mtu is not None:
            _ip("-n", r.netns, "link", "set", r.ifname, "mtu", str(far_mtu))
        _ip("-n", a.netns, "route", "add", "default", "via", r.address)
        _ip("-n", b.netns, "route", "add", "default", "via", subnet_address(1, 1))
        if ipv6:
            for host, ifname, _, _ in links:
                wait_ipv6_ready(host.netns, ifname)
            _ip("-n", a.netns, "-6", "route", "add", "default", "via", subnet_address6(0, 2))
            _ip("-n", b.netns, "-6", "route", "add", "default", "via", subnet_address6(1, 1))
        yield Routed(a, r, b)
    finally:
        for host in (a, r, b):
            host.kill_processes()
        for ns in created:
            _delete_netns(ns)


def _delete_netns(ns: str) -> None:
    """Delete a namespace, killing any process still inside it (ours, by pid)."""
    pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
    for pid in pids.stdout.split():
        if pid.isdigit() and int(pid) != os.getpid():  # never ourselves (thread inside)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_ours(name: str, prefix: str | None) -> bool:
    """Does ``name`` look like ``two_hosts`` or ``routed_hosts`` made it:
    ``<prefix>-<pid>-<n>-<hex4>-a|b|r``?"""
    parts = name.split("-")
    if len(parts) != 5 or (prefix is not None and parts[0] != prefix):
        return False
    _, pid, count, rand, side = parts
    return pid.isdigit() and count.isdigit() and len(rand) == 4 and side in ("a", "b", "r")


def cleanup_stale(prefix: str | None = "at") -> list[str]:
    """Delete namespaces made by :func:`two_hosts` in runs whose process is gone.

    ``prefix=None`` matches every prefix. Returns the names removed. Namespaces of
    live runs (pid still exists) and names not in our format are left alone.
    """
    removed: list[str] = []
    if not NETNS_RUN_DIR.is_dir():
        return removed
    for entry in sorted(NETNS_RUN_DIR.iterdir()):
        if not _is_ours(entry.name, prefix) or _pid_alive(int(entry.name.split("-")[1])):
            continue
        _delete_netns(entry.name)
        removed.append(entry.name)
    return removed


def list_netns(prefix: str) -> list[str]:
    """Names of existing namespaces starting with ``prefix`` (for leak checks)."""
    if not NETNS_RUN_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_RUN_DIR.iterdir() if p.name.startswith(prefix))


# --------------------------------------------------------------------- kernel peers


def is_listening(host: Host, port: int) -> bool:
    """True if some kernel TCP socket in ``host`` listens on ``port``.

    Reads ``/proc/thread-self/net/tcp`` from a thread inside the namespace (state 0A
    is LISTEN), which is cheaper than running ``ss`` in a subprocess.
    """

    def scan() -> bool:
        for name in ("tcp", "tcp6"):
            path = Path("/proc/thread-self/net") / name
            if not path.exists():
                continue
            for line in path.read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    return True
        return False

    return host.call(scan)


def wait_listening(host: Host, port: int, timeout: float = 10.0) -> None:
    """Block until a kernel socket listens on ``port`` in ``host`` (or raise)."""
    if not poll_until(lambda: is_listening(host, port), timeout):
        raise TimeoutError(f"nothing listens on {host.address}:{port} after {timeout}s")


@dataclass
class PingResult:
    """Outcome of :func:`ping`: ``rtts`` are seconds, one per reply received."""

    sent: int
    rtts: list[float]

    @property
    def received(self) -> int:
        return len(self.rtts)

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 0.0

    @property
    def median_rtt(self) -> float:
        ordered = sorted(self.rtts)
        return ordered[len(ordered) // 2] if ordered else float("nan")


def ping(
    host: Host, addr: str, count: int = 1, interval: float = 0.01, timeout: float = 1.0
) -> PingResult:
    """ICMP echo from ``host`` to ``addr``: ``count`` requests, ``interval`` apart.

    Built in because the machine has no ``ping`` binary. Bounded: at most ``count``
    requests (≤ 65,535) and ``count * interval + timeout`` seconds in total. Replies
    are matched by identifier and sequence; duplicates are not counted twice.  An
    IPv6 ``addr`` sends ICMPv6 echoes (the kernel fills in their checksum, and a
    raw ICMPv6 socket receives no IP header).
    """
    if not 1 <= count <= 0xFFFF:
        raise ValueError("count must be in 1..65535")
    v6 = ":" in addr
    request, reply = (128, 129) if v6 else (8, 0)
    family, proto = (
        (socket.AF_INET6, socket.IPPROTO_ICMPV6) if v6 else (socket.AF_INET, socket.IPPROTO_ICMP)
    )
    sock = host.call(socket.socket, family, socket.SOCK_RAW, proto)
    ident = random.getrandbits(16)
    sent_at: list[float] = []
    rtts: dict[int, float] = {}
    with sock:
        start = time.monotonic()
        end = start + count * interval + timeout
        while (now := time.monotonic()) < end and len(rtts) < count:
            if len(sent_at) < count and now >= start + len(sent_at) * interval:
                body = struct.pack("!BBHHH", request, 0, 0, ident, len(sent_at)) + b"aiotcp-ping"
                if not v6:
                    body = body[:2] + struct.pack("!H", internet_checksum(body)) + body[4:]
                sent_at.append(time.monotonic())
                with contextlib.suppress(OSError):  # EPERM from a local DROP rule = loss
                    sock.sendto(body, (addr, 0))
            due = start + len(sent_at) * interval if len(sent_at) < count else end
            sock.settimeout(max(0.0, min(due, end) - time.monotonic()))
            try:
                packet = sock.recv(2048)
            except (TimeoutError, BlockingIOError):
                continue
            ihl = 0 if v6 else (packet[0] & 0x0F) * 4
            if len(packet) < ihl + 8:
                continue
            kind, _, _, rid, rseq = struct.unpack("!BBHHH", packet[ihl : ihl + 8])
            if kind == reply and rid == ident and rseq < len(sent_at) and rseq not in rtts:
                rtts[rseq] = time.monotonic() - sent_at[rseq]
    return PingResult(sent=len(sent_at), rtts=list(rtts.values()))


def pattern(nbytes: int, seed: int = 0) -> bytes:
    """Deterministic test payload: both ends can compute it without sharing it."""
    return random.Random(seed).randbytes(nbytes)


# The kernel peers run in their own interpreter (no GIL shared with the stack under
# test) and inherit an already-listening socket, so they are ready the moment the
# context is entered: no polling, no startup race.
_PEER_CODE = r"""
import hashlib, random, socket, sys, threading
mode, fd, arg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lsock = socket.socket(fileno=fd)
def handle(conn):
    with conn:
        if mode == "echo":
            while data := conn.recv(65536):
                conn.sendall(data)
        elif mode == "sink":
            h, n = hashlib.sha256(), 0
            while data := conn.recv(262144):
                h.update(data); n += len(data)
            print(n, h.hexdigest(), flush=True)
        elif mode == "refuse":
            # Like Redis in protected mode: wait for the request, answer without
            # reading it, close.  The unread request turns the close into a RST
            # that follows the reply within microseconds.
            conn.recv(1, socket.MSG_PEEK)
            conn.sendall(b"-ERR go away\r\n")
        elif mode == "source":
            conn.sendall(random.Random(0).randbytes(arg))
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(65536):
                pass
while True:
    conn, _ = lsock.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
"""


@dataclass
class KernelServer:
    """A kernel TCP server process in a host (``proc``); sinks report via :meth:`read_result`."""

    host: Host
    port: int
    proc: subprocess.Popen[str]

    def read_result(self, timeout: float = 30.0) -> tuple[int, str]:
        """Next finished sink connection: ``(byte count, sha256 hex)``."""
        line = read_line(self.proc.stdout, timeout)
        count, digest = line.split()
        return int(count), digest


def read_line(stream: IO[str] | None, timeout: float) -> str:
    """Read one line from a pipe with a deadline (the pipe must be line-oriented)."""
    if stream is None:
        raise RuntimeError("process has no stdout pipe")
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        raise TimeoutError(f"no output line within {timeout}s")
    if not box[0]:
        raise EOFError("stream closed before a full line (did the process exit?)")
    return box[0]


@contextlib.contextmanager
def _kernel_server(
    host: Host, port: int, mode: str, arg: int = 0, congestion: str | None = None
) -> Iterator[KernelServer]:
    lsock = host.listen(port, backlog=4096)  # many clients at once: no SYN cookies
    if congestion is not None:  # accepted sockets inherit the listener's algorithm
        lsock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, congestion.encode())
    try:
        proc = host.python(
            ["-c", _PEER_CODE, mode, str(lsock.fileno()), str(arg)],
            pass_fds=(lsock.fileno(),),
            stdout=subprocess.PIPE,
            text=True,
        )
    finally:
        lsock.close()  # the child holds its own copy; ready already
    try:
        yield KernelServer(host=host, port=port, proc=proc)
    finally:
        host.stop(proc)


def kernel_echo_server(host: Host, port: int) -> contextlib.AbstractContextManager[KernelServer]:
    """Kernel echo server on ``host:port``, listening before the block starts."""
    return _kernel_server(host, port, "echo")


def kernel_sink(host: Host, port: int) -> contextlib.AbstractContextManager[KernelServer]:
    """Kernel server that reads to EOF and reports ``(bytes, sha256)`` per connection."""
    return _kernel_server(host, port, "sink")


def kernel_refuser(host: Host, port: int) -> contextlib.AbstractContextManager[KernelServer]:
    """Kernel server that answers a client's first bytes with ``REFUSAL`` and closes
    without reading them: the reply, then a RST (RFC 2525 §2.17)."""
    return _kernel_server(host, port, "refuse")


REFUSAL = b"-ERR go away\r\n"


_IDLE_CLIENTS = r"""
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
socks = [socket.create_connection((sys.argv[1], int(sys.argv[2]))) for _ in range(int(sys.argv[3]))]
print("ready", flush=True)
sys.stdin.read()
"""


def idle_kernel_clients(host: Host, address: str, port: int, count: int) -> subprocess.Popen[str]:
    """A process in ``host`` that opens ``count`` kernel connections to
    ``address:port`` and holds them idle.  It prints ``ready`` once all are open
    (``read_line``; from a thread if the server runs on this thread's loop), and
    ``host.stop`` ends it."""
    return host.python(
        ["-c", _IDLE_CLIENTS, address, str(port), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def kernel_source(
    host: Host, port: int, nbytes: int, congestion: str | None = None
) -> contextlib.AbstractContextManager[KernelServer]:
    """Kernel server that sends ``pattern(nbytes)`` to each client, then half-closes;
    ``congestion``: its ``TCP_CONGESTION`` (None: the namespace's default)."""
    return _kernel_server(host, port, "source", nbytes, congestion)
