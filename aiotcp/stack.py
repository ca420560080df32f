"""The Stack: one per event loop; owns the raw socket, the demux table, listeners, ports.

Receive path: ``loop.add_reader`` on each raw socket → ``recv_batch`` takes that
socket's burst → each packet is demultiplexed by its 4-tuple to a connection's inbox, or
to the listener of its port, or — when the port is ours but nothing matches —
answered with a RST as RFC 9293 §3.10.7.1 says.  Segments to ports we do not own
(another aiotcp process shares the namespace) are ignored: not our business.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import functools
import json
import os
import secrets
import socket
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from aiotcp.control import ControlServer
from aiotcp.core.connection import Connection, reset_for
from aiotcp.core.flow import FlowKey, flow_key
from aiotcp.core.listener import Listener
from aiotcp.core.options import TcpOptions
from aiotcp.core.segment import RST, SYN
from aiotcp.core.state import State
from aiotcp.driver import ConnectionDriver, demultiplex
from aiotcp.egress import DS_MASK, Egress
from aiotcp.io import exit_hooks, route
from aiotcp.io.flow_share import FlowShare, flow_bucket
from aiotcp.io.guards import GuardKind, make_guard
from aiotcp.io.icmp import Icmp6Socket, IcmpSocket, open_icmp6_socket
from aiotcp.io.lookup_cache import LookupCache
from aiotcp.io.packet import Packet, format_endpoint, format_ip
from aiotcp.io.pcap import PcapWriter
from aiotcp.io.ports import DEFAULT_EPHEMERAL_RANGE
from aiotcp.io.rawsock import RawSocket
from aiotcp.io.wires import find_wires
from aiotcp.port_group import PortGroup
from aiotcp.time_wait import TimeWaitTable

StateObserver = Callable[[ConnectionDriver, State, State], None]
ANY = b""
"""A listener on every address of both families (``host=None``: asyncio binds a
socket per family there, Linux one dual-stack socket)."""
ANY4 = bytes(4)
"""A listener on every IPv4 address (``0.0.0.0``)."""
ANY6 = bytes(16)
"""A listener on every IPv6 address (``::``: asyncio sets ``IPV6_V6ONLY`` on it)."""
ROUTE_TTL = 1.0  # seconds a route lookup is reused by later connects
TABLE_CHUNK = 200
"""State-table rows built (and encoded, by the control socket) per loop pass."""
ASYNCIO_DEFAULTS: dict[str, Any] = {"nodelay": True}
"""Where asyncio's defaults differ from Linux's, the asyncio-facing API takes
asyncio's: it sets TCP_NODELAY on every TCP transport, and a program written for
asyncio counts on it (a header written before a body would wait ~40 ms for a
delayed ACK).  The core's ``TcpOptions`` keeps Linux's defaults."""


@dataclass
class ListenerEntry:
    """A listening port: the core listener and who to tell when its accept queue grows.

    Connections wait in the listener's accept queue until the owner calls
    ``Stack.accept`` — like the kernel's, so a server that is not accepting
    (``start_serving=False``) fills its backlog and further SYNs are dropped.
    """

    listener: Listener
    on_ready: Callable[[], None]
    addr: bytes
    options: TcpOptions
    """The listener's own options; each SYN's children get them with its route MTU."""
    _by_mtu: dict[int | None, TcpOptions] = field(default_factory=dict)
    _by_mtu_of: TcpOptions | None = None  # the ``options`` _by_mtu was made from

    def with_mtu(self, mtu: int | None) -> TcpOptions:
        """The options for children behind a route of ``mtu``, made once per MTU
        (and again after a ``setsockopt`` replaced ``options``): checking a copy
        for every SYN showed in connections per second."""
        if self._by_mtu_of is not self.options or len(self._by_mtu) >= 16:
            self._by_mtu.clear()
            self._by_mtu_of = self.options
        opts = self._by_mtu.get(mtu)
        if opts is None:
            opts = self._by_mtu[mtu] = self.options.replace(mtu=mtu)
        return opts


class Stack:
    """A user-space TCP/IPv4 stack bound to one asyncio event loop."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        guard: GuardKind = "iptables",
        ephemeral_range: tuple[int, int] = DEFAULT_EPHEMERAL_RANGE,
        verify_checksum: bool = True,
        isn_secret: bytes | None = None,
        control: bool | None = None,
        gso: bool = True,
        max_time_wait: int = 65536,
        linger: float = 10.0,
        pcap: str | None = None,
        events: str | None = None,
        wire_interfaces: Iterable[str] | None = None,
        **default_tcp_options: Any,
    ) -> None:
        """``wire_interfaces``: the interfaces whose segments must carry a real TCP
        checksum unless they are GRO aggregates (``aiotcp.io.wires``); None finds
        them (NICs on a hardware bus that are not paravirtual)."""
        self.loop = loop or asyncio.get_running_loop()
        self.linger = linger
        self.defaults = TcpOptions().replace(**{**ASYNCIO_DEFAULTS, **default_tcp_options})
        """Options every connection starts from; fixed once the stack is created."""
        self._option_sets: dict[tuple[Any, ...], TcpOptions] = {}
        self.resolved: asyncio.Future[None] = self.loop.create_future()
        self.resolved.set_result(None)
        self.isn_secret = isn_secret or secrets.token_bytes(32)
        self.guard = make_guard(guard, ephemeral_range)
        self.guard.install()
        self._filter_ranges = self.guard.port_ranges()  # what the raw socket admits
        self.groups: dict[int, PortGroup] = {}
        """The ``reuse_port`` groups of our shared ports (``aiotcp.port_group``)."""
        self._filter_shares: dict[int, FlowShare] = {}  # and what it admits of those
        try:
            self.raw = RawSocket(
                port_ranges=self._filter_ranges,
                verify_checksum=verify_checksum,
                wires=find_wires(wire_interfaces),
            )
        except BaseException:
            self.guard.close()
            raise
        self.icmp6: Icmp6Socket | None = None
        """ICMPv6's, where the kernel has IPv6 (``aiotcp.io.icmp``)."""
        try:
            self.icmp = IcmpSocket(self._filter_ranges, self.raw.counters)
            """ICMP errors quoting our segments (``aiotcp.io.icmp``)."""
            try:
                self.icmp6 = open_icmp6_socket(self._filter_ranges, self.raw.counters)
            except BaseException:
                self.icmp.close()
                raise
        except BaseException:
            self.raw.close()
            self.guard.close()
            raise
        self._icmp_sockets: list[IcmpSocket] = [self.icmp, *([self.icmp6] if self.icmp6 else [])]
        pcap = pcap or os.environ.get("AIOTCP_PCAP") or None
        self.pcap = PcapWriter(pcap) if pcap else None
        self.raw.pcap = self.pcap
        self.connections: dict[FlowKey, ConnectionDriver] = {}
        self._port_users: collections.Counter[int] = collections.Counter()
        self.time_wait = TimeWaitTable(self.loop, max_time_wait)
        """TIME-WAIT connections: bounded like ``tcp_max_tw_buckets``, parked drivers
        woken by one timer."""
        self._mtu_cache: dict[bytes, int] = {}
        self._route_cache: LookupCache[str, route.Route] = LookupCache(ROUTE_TTL)
        self.listeners: dict[int, ListenerEntry] = {}
        self.counters: collections.Counter[str] = self.raw.counters
        self.closed = False
        self.egress = Egress(self.raw, self.counters, gso=gso, pcap=self.pcap)
        """Sends segments: AF_PACKET super-segments where the next hop allows (``gso``)."""
        self.state_observers: list[StateObserver] = []
        """Called on every state transition of every connection (demos, logs, tests)."""
        events = events or os.environ.get("AIOTCP_EVENTS") or None
        self._events_file = open(events, "a") if events else None  # noqa: SIM115
        if self._events_file is not None:
            self.state_observers.append(self._log_transition)
        for fd in self.raw.filenos():
            self.loop.add_reader(fd, self._on_readable, fd)
        for icmp in self._icmp_sockets:
            self.loop.add_reader(icmp.fileno(), self._on_icmp, icmp)
        if control is None:
            control = os.environ.get("AIOTCP_CONTROL", "").lower() in ("1", "true", "yes")
        self.control: ControlServer | None = None
        if control:
            self.control = ControlServer(self)
            self._control_started = self.loop.create_task(self.control.start())
            self._control_hook = exit_hooks.register(self.control.close)

    # -- options ------------------------------------------------------------------
    def options(self, mtu: int | None = None, **overrides: Any) -> TcpOptions:
        """Per-connection options: the stack's defaults, then the call's ``**tcp_options``,
        with the route's ``mtu``.

        Connections share one ``TcpOptions`` per distinct set (checked once by
        ``replace``): a connection never changes its options in place
        (``Connection.set_option`` gives it a new object), so a copy each would
        only cost memory (344 bytes per idle connection) and time.
        """
        key = (mtu, *sorted(overrides.items()))
        try:
            opts = self._option_sets.get(key)
        except TypeError:  # an unhashable value: replace() names the option
            opts = None
        if opts is None:
            changes = overrides if mtu is None else {**overrides, "mtu": mtu}
            opts = self.defaults.replace(**changes)
            if len(self._option_sets) < 64:
                with contextlib.suppress(TypeError):
                    self._option_sets[key] = opts
        return opts

    # -- receive path ---------------------------------------------------------------
    def _on_readable(self, fd: int) -> None:
        # Payloads are memoryviews into the socket's receive buffers, valid until
        # its next batch: every connection processes its share before that (the core
        # copies what it keeps), which saves a copy of every byte received.  Only
        # the socket that woke us is read: asking the idle ones cost a system call
        # and an exception each, per wake-up.
        batch = self.raw.recv_batch(fd=fd)
        touched, rest = demultiplex(batch, self.connections, self.listeners)
        for pkt in rest:
            driver = self._dispatch(pkt)
            if driver is not None and driver not in touched:
                touched.append(driver)
        try:
            for driver in touched:  # each connection's share of the batch, in one step
                driver.process_now()
        finally:
            for driver in touched:  # anything not processed keeps a copy of its own
                for seg in driver.inbox:
                    if isinstance(seg.payload, memoryview):
                        seg.payload = bytes(seg.payload)

    def _on_icmp(self, icmp: IcmpSocket) -> None:
        """ICMP and ICMPv6 errors reach the connection they quote, as the kernel's
        reach its socket (RFC 9293 §3.9.2.2, MUST-54; docs/architecture.md)."""
        prefix = icmp.prefix  # counters per family: icmp_acted_on, icmp6_acted_on...
        for err in icmp.recv_errors():
            (lip, lport), (rip, rport) = err.local, err.remote
            driver = self.connections.get(flow_key(lip, lport, rip, rport))
            if driver is None:
                self.counters[prefix + "_no_connection"] += 1
                continue
            conn = driver.conn
            if err.mtu is not None:
                acted = conn.path_mtu_reduced(err.mtu, seq=err.seq)
                if acted:
                    # New connections to this peer ask the route again; the kernel
                    # keeps the lower path MTU there (and lets it expire).
                    self._mtu_cache.pop(rip, None)
            else:
                acted = conn.icmp_error(err.errno, hard=err.hard, seq=err.seq)
            self.counters[prefix + ("_acted_on" if acted else "_ignored")] += 1
            if acted:
                driver.process_now()

    def _dispatch(self, pkt: Packet) -> ConnectionDriver | None:
        """Hand ``pkt`` to its connection or its listener (the driver to step with the
        batch is returned: the connection, or a child the handshake just completed),
        or answer it.

        ``demultiplex`` has already delivered what plainly belongs to a connection.
        """
        seg = pkt.segment
        driver = self.connections.get(pkt.flow())
        if driver is not None:
            if not (seg.dst_port in self.listeners and driver.conn.accepts_new_syn(seg)):
                driver.deliver(seg)
                return driver
            # RFC 9293 §3.6.1 / RFC 6191: a clearly newer SYN reopens a TIME-WAIT
            # 4-tuple (as Linux's tcp_timewait_state_process does); the old
            # incarnation goes and the listener takes the SYN.
            self.counters["time_wait_reopened"] += 1
            driver.end()
            self.forget(driver)
        entry = self.listeners.get(seg.dst_port)
        if entry is not None and _listens_for(entry.addr, pkt.dst):
            if seg.payload:
                seg.payload = bytes(seg.payload)  # a child may queue it past this batch
            now = self.loop.time()
            if seg.flags & SYN:
                # The MSS a child offers depends on the route back to this client.
                entry.listener.options = entry.with_mtu(self._mtu_to(pkt.src))
            conn = entry.listener.receive(seg, pkt.src, pkt.dst, now)
            opts = entry.options
            for out, src, dst in entry.listener.segments_to_send(now):
                if out.flags & RST and not self._may_reset(pkt):
                    continue
                self.egress.send_segment(out, src, dst, opts.tos & DS_MASK, opts.ttl)
            if conn is not None:
                # Its first step, with the batch's: the handshake's end reaches the
                # listener's accept queue.
                driver = self._adopt(conn)
                driver.established.add_done_callback(functools.partial(_established, entry))
                return driver
            return None
        if self.guard.owns(seg.dst_port) or self.guard.silences_free_port(seg.dst_port):
            # RFC 9293 §3.10.7.1: no connection, so answer with a RST — ours, or the
            # kernel's would have been dropped by our guard for this free port.
            rst = reset_for(seg)
            self.counters["rst_no_connection"] += 1
            if rst is not None and self._may_reset(pkt):
                self.egress.send_segment(rst, pkt.dst, pkt.src)
        else:
            self.counters["ignored_not_our_port"] += 1
        return None

    def _may_reset(self, pkt: Packet) -> bool:
        """A segment to a shared port that matches nothing here may be another
        worker's: answer it only when the group says it cannot be."""
        group = self.groups.get(pkt.segment.dst_port)
        if group is None or group.may_reset(_bucket_of(pkt)):
            return True
        self.counters["reuseport_rst_withheld"] += 1
        return False

    def _mtu_to(self, addr: bytes) -> int | None:
        """Route MTU towards ``addr`` (cached; a SYN flood from random sources only
        refills the bounded cache)."""
        mtu = self._mtu_cache.get(addr)
        if mtu is None:
            if len(self._mtu_cache) >= 4096:
                self._mtu_cache.clear()
            try:
                mtu = route.lookup(format_ip(addr)).mtu
            except OSError:
                mtu = 0
            self._mtu_cache[addr] = mtu
        return mtu or None

    def _route_to(self, dst: str) -> route.Route:
        """The kernel's route to ``dst``, reused for ROUTE_TTL seconds: asking costs a
        socket per connect, which a connections-per-second load notices."""
        now = self.loop.time()
        r = self._route_cache.get(dst, now)
        if r is None:
            r = route.lookup(dst)  # raises like connect() would: not cached
            self._route_cache.put(dst, r, now)
        return r

    def accept(self, port: int) -> ConnectionDriver | None:
        """Take the oldest established connection from ``port``'s accept queue."""
        entry = self.listeners.get(port)
        while entry is not None and (conn := entry.listener.accept()) is not None:
            driver = self.connections.get(conn.key)
            if driver is not None and conn.state is not State.CLOSED:
                return driver
        return None

    # -- connections ------------------------------------------------------------------
    def _adopt(self, conn: Connection) -> ConnectionDriver:
        driver = ConnectionDriver(self, conn, self.egress.path(conn.local[0], conn.remote[0]))
        self.connections[driver.key] = driver
        self._port_users[conn.local[1]] += 1
        if self.groups:
            group = self.groups.get(conn.local[1])
            if group is not None:
                group.flow_added(_connection_bucket(conn))
        return driver

    # -- what the drivers tell the stack (DriverHost) ---------------------------------
    def forget(self, driver: ConnectionDriver) -> None:
        if self.connections.get(driver.key) is not driver:
            return
        del self.connections[driver.key]
        self.time_wait.left(driver)
        port = driver.conn.local[1]
        self._port_users[port] -= 1
        group = self.groups.get(port) if self.groups else None
        if group is not None:
            group.flow_removed(_connection_bucket(driver.conn))
        if not self._port_users[port]:
            del self._port_users[port]
            if port not in self.listeners:
                self._leave_group(port)
                self.guard.release(port)

    def park(self, driver: ConnectionDriver, deadline: float) -> None:
        self.time_wait.park(driver, deadline)

    def _port_in_use(self, port: int) -> bool:
        return port in self._port_users

    def _log_transition(self, driver: ConnectionDriver, old: State, new: State) -> None:
        """One JSON line per transition, for ``python -m aiotcp plot --events``."""
        (lip, lport), (rip, rport) = driver.conn.local, driver.conn.remote
        record = {
            "time": time.time(),
            "local": f"{format_endpoint(lip, lport)}",
            "remote": f"{format_endpoint(rip, rport)}",
            "old": old.value,
            "new": new.value,
        }
        assert self._events_file is not None
        self._events_file.write(json.dumps(record) + "\n")

    def state_changed(self, driver: ConnectionDriver, old: State, new: State) -> None:
        for observer in self.state_observers:
            observer(driver, old, new)
        if new is State.TIME_WAIT:
            oldest = self.time_wait.entered(driver)
            if oldest is not None:
                # Past ``max_time_wait`` the oldest entry goes early, as Linux's
                # tcp_max_tw_buckets does: a flood of closes cannot grow the table.
                self.counters["time_wait_overflow"] += 1
                assert isinstance(oldest, ConnectionDriver)
                oldest.end()
                self.forget(oldest)
        elif old is State.TIME_WAIT:
            self.time_wait.left(driver)

    async def connect(
        self,
        host: str,
        port: int,
        *,
        local_addr: tuple[str, int] | None = None,
        **tcp_options: Any,
    ) -> ConnectionDriver:
        """Active open; returns the driver once ESTABLISHED (or raises like the kernel)."""
        self._check_open()
        dst_str = route.resolve(host)
        r = self._route_to(dst_str)
        family = route.family_of(dst_str)
        bound = local_addr[0] if local_addr else None
        if bound and bound not in ("0.0.0.0", "::"):
            if route.family_of(bound) != family:
                raise OSError(errno.EAFNOSUPPORT, f"cannot reach {dst_str} from {bound}")
            route.check_local(bound)
            src_str = bound
        else:
            src_str = r.source  # INADDR_ANY: the route's
        # Everything that can reject the call comes before the port is claimed.
        src, dst = socket.inet_pton(family, src_str), socket.inet_pton(family, dst_str)
        opts = self.options(r.mtu, **tcp_options)
        local_port = self.guard.claim(local_addr[1] if local_addr else 0)
        lo, hi = self.guard.reservations.ephemeral_range
        if not lo <= local_port <= hi:  # inside it, the filter already admits the port
            self._refresh_filter()
        now = self.loop.time()
        conn = Connection((src, local_port), (dst, port), opts, self.isn_secret, now)
        conn.connect(now)
        driver = self._adopt(conn)
        driver.process_now()  # the SYN leaves now
        try:
            # Awaited directly: cancelling connect() cancels it, and every reader
            # of ``established`` checks done() first.
            await driver.established
        except asyncio.CancelledError:
            driver.abort()
            raise
        except OSError:
            if conn.state is State.CLOSED:
                # Refused or timed out: asyncio closes its socket before raising,
                # so the port is free when the caller hears of it; here too.
                driver.end()
                self.forget(driver)
            raise
        return driver

    def listen(
        self,
        port: int,
        on_ready: Callable[[], None],
        *,
        host: str | None = None,
        backlog: int = 100,
        reuse_address: bool = True,
        reuse_port: bool = False,
        **tcp_options: Any,
    ) -> ListenerEntry:
        """Passive open on ``port`` (0: an ephemeral one).

        ``reuse_address`` is ``SO_REUSEADDR`` on the port's reservation, as asyncio
        sets it on listening sockets: a server restarts on a port the kernel still
        has in TIME-WAIT, and still cannot share it with another listener.
        ``reuse_port`` is ``SO_REUSEPORT``: processes of this user that all listen
        with it share the port, each taking its part of the new flows
        (``aiotcp.port_group``; docs/reuseport.md).
        """
        self._check_open()
        if port in self.listeners:
            raise OSError(98, f"address already in use: aiotcp already listens on {port}")
        if not host:
            addr = ANY
        elif host in ("0.0.0.0", "::"):
            addr = ANY4 if host == "0.0.0.0" else ANY6
        else:
            address = route.resolve(host)
            route.check_local(address)
            addr = socket.inet_pton(route.family_of(address), address)
        opts = self.options(None, backlog=backlog, **tcp_options)  # before the claim
        port = self.guard.claim(port, reuse_address=reuse_address, reuse_port=reuse_port)
        if reuse_port:
            try:
                self.groups[port] = PortGroup(self.loop, port, self._refresh_filter)
            except BaseException:
                self.guard.release(port)
                raise
        entry = ListenerEntry(
            Listener((addr, port), opts, self.isn_secret, self.loop.time()), on_ready, addr, opts
        )
        self.listeners[port] = entry
        self._refresh_filter()
        return entry

    def unlisten(self, port: int) -> None:
        entry = self.listeners.pop(port, None)
        if entry is None:
            return
        for conn in entry.listener.close():
            driver = self.connections.get(conn.key)
            if driver is not None:
                driver.poke()
        group = self.groups.get(port)
        if group is not None:
            group.stop_listening()  # its connections stay ours, new flows go to the others
        if not self._port_in_use(port):
            self._leave_group(port)
            self.guard.release(port)
        self._refresh_filter()

    def _leave_group(self, port: int) -> None:
        group = self.groups.pop(port, None)
        if group is not None:
            group.close()

    def _refresh_filter(self) -> None:
        """Recompile the raw socket's BPF filter, only when the admitted ports or this
        worker's shares of shared ports changed (an ordinary connect claims a port
        the ephemeral range already admits)."""
        ranges = self.guard.port_ranges()
        shares = {port: group.share for port, group in self.groups.items()}
        new_ports = ranges != self._filter_ranges
        if new_ports or shares != self._filter_shares:
            self._filter_ranges, self._filter_shares = ranges, shares
            self.raw.set_port_ranges(ranges, shares)
        if new_ports:
            for icmp in self._icmp_sockets:
                icmp.set_port_ranges(ranges)

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("this aiotcp Stack is closed")

    def table(self, *, state: str | None = None, port: int | None = None) -> list[dict[str, Any]]:
        """Rows for ``aiotcp.connections()``, ``ss`` and the control socket: the
        listeners and connections in ``state`` with ``port`` at either end (both
        optional), filtered before any row is built."""
        return [row for rows in self.table_chunks(state=state, port=port) for row in rows]

    def table_chunks(
        self, *, state: str | None = None, port: int | None = None, chunk: int = TABLE_CHUNK
    ) -> Iterator[list[dict[str, Any]]]:
        """``table`` in lists of at most ``chunk`` rows, so the control socket can let
        the loop run between them: a server with thousands of connections keeps
        serving while ``ss`` reads its table."""
        from aiotcp.sstable import connection_row, listener_row, state_filter

        wanted = state_filter(state)
        if wanted in (None, State.LISTEN):
            yield [
                listener_row(e.listener)
                for p, e in self.listeners.items()
                if port is None or port == p
            ]
        if wanted is State.LISTEN:
            return
        conns = [
            d.conn
            for d in list(self.connections.values())
            if (wanted is None or d.conn.state is wanted)
            and (port is None or port in (d.key[1], d.key[3]))
        ]
        for i in range(0, len(conns), chunk):
            now = self.loop.time()
            yield [connection_row(conn, now) for conn in conns[i : i + chunk]]

    # -- lifecycle ------------------------------------------------------------------
    def close(self) -> None:
        """Abort every connection (RST), stop listening, remove the guard. Idempotent."""
        if self.closed:
            return
        self.closed = True
        for port in list(self.listeners):
            self.unlisten(port)
        for driver in list(self.connections.values()):
            driver.conn.abort()
            driver.step()  # sends the RST and tells the transport (connection_lost)
            driver.end()
        self.connections.clear()
        for port in list(self.groups):
            self._leave_group(port)
        self.time_wait.close()
        if not self.loop.is_closed():
            for fd in self.raw.filenos():
                self.loop.remove_reader(fd)
            for icmp in self._icmp_sockets:
                self.loop.remove_reader(icmp.fileno())
        self.raw.close()
        for icmp in self._icmp_sockets:
            icmp.close()
        self.egress.close()
        if self.pcap is not None:
            self.pcap.close()
        if self._events_file is not None:
            self._events_file.close()
        self.guard.close()
        if self.control is not None:
            self.control.close()
            exit_hooks.unregister(self._control_hook)
        _stacks.pop(self.loop, None)

    async def __aenter__(self) -> Stack:
        _stacks[self.loop] = self
        return self

    async def aclose(self) -> None:
        """Close after the connections the application closed have delivered what it
        wrote (their FIN acknowledged), for at most ``linger`` seconds.

        A kernel keeps sending for a socket closed just before the process exits;
        a user-space stack ends with its loop, so this is where that data gets out.
        Connections the application did not close are reset, as by ``close()``.
        """
        deadline = self.loop.time() + self.linger
        while not self.closed and self.loop.time() < deadline:
            if not any(d.conn.flushing for d in self.connections.values()):
                break
            await asyncio.sleep(0.01)
        self.close()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _bucket_of(pkt: Packet) -> int:
    seg = pkt.segment
    return flow_bucket(pkt.src, seg.src_port, pkt.dst, seg.dst_port)


def _connection_bucket(conn: Connection) -> int:
    (local_ip, local_port), (remote_ip, remote_port) = conn.local, conn.remote
    return flow_bucket(remote_ip, remote_port, local_ip, local_port)


def _listens_for(addr: bytes, dst: bytes) -> bool:
    """Does a listener on ``addr`` (``ANY``, ``ANY4``, ``ANY6`` or one address) take a
    SYN to ``dst``?  (No packet is addressed to 0.0.0.0 or ``::``: the parsers drop
    those, so an all-zero ``addr`` can only be a family's wildcard.)"""
    return not addr or addr == dst or (len(addr) == len(dst) and not any(addr))


def _established(entry: ListenerEntry, fut: asyncio.Future[None]) -> None:
    if not fut.cancelled() and fut.exception() is None:
        entry.on_ready()


_stacks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Stack] = weakref.WeakKeyDictionary()
_loop_options: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)


def configure_loop(loop: asyncio.AbstractEventLoop, options: dict[str, Any]) -> None:
    """The options ``get_stack`` creates ``loop``'s stack with when its caller gives
    none: what ``aiotcp.run(..., guard="socket")`` means for every connection."""
    _loop_options[loop] = dict(options)


def get_stack(**kwargs: Any) -> Stack:
    """The running loop's stack, created on first use (explicit ``Stack(...)`` also works)."""
    loop = asyncio.get_running_loop()
    stack = _stacks.get(loop)
    if stack is None or stack.closed:
        stack = Stack(loop=loop, **(kwargs or _loop_options.get(loop, {})))
        _stacks[loop] = stack
        _close_with_loop(loop, stack)
    return stack


def _close_with_loop(loop: asyncio.AbstractEventLoop, stack: Stack) -> None:
    """Close the stack when its loop closes (asyncio.run closes the loop at the end).

    Connections the program closed first get up to ``Stack.linger`` seconds to
    deliver what it wrote (``aclose``): a kernel would go on sending after the
    program returned, and a user-space stack cannot outlive its loop.
    """
    original_close = loop.close

    def close() -> None:
        if not stack.closed and not loop.is_running() and not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.run_until_complete(stack.aclose())
        stack.close()
        original_close()

    with contextlib.suppress(AttributeError, TypeError):
        loop.close = close  # type: ignore[method-assign]
