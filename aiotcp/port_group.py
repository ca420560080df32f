"""A ``reuse_port`` group: the aiotcp processes that listen on one port together.

The kernel's ``SO_REUSEPORT`` keeps a group per port and picks a listener for each
SYN.  aiotcp's workers each see every segment on their raw socket, so they agree
among themselves who owns which flows (``aiotcp.io.flow_share``), and each one's
BPF filter admits its own.  For that a worker must know the group's members, and
learn at once when one comes or goes.

Each member binds an abstract unix socket named by its user, the port and a slot
number (``SOCK_SEQPACKET``; abstract names belong to the network namespace, as the
ports do, and vanish with the process): binding the lowest free name is how a
worker takes its slot.  It then connects to every other slot that is bound, and
the members it reaches connect it back in their lists, so each pair of members
holds a connection.  When a process dies the kernel closes its sockets and every
other member reads EOF on the spot: the survivors' filters take over its buckets
before the next SYN (the kernel's behaviour too: a dead listener's new flows go
to the others, its connections are lost).

Over those connections each member says whether it listens (a member that stopped
listening keeps its connections until they end, without new flows) and which
buckets outside its own share still hold connections of its own, for instance
after a newcomer took part of its share.  A worker never answers with a RST a
segment that another member may own (``may_reset``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from aiotcp.io.flow_share import BUCKETS, FlowShare, in_ranges, share_of, to_ranges

MAX_SLOTS = 64
"""Members of a group at most (workers per port)."""
_STATE = struct.Struct("!BBH32s")  # version, listening, slot, buckets kept (a bitmap)
_VERSION = 1
_SO_PEERCRED = getattr(socket, "SO_PEERCRED", 17)


def slot_address(port: int, slot: int, uid: int | None = None) -> bytes:
    """The abstract name of ``slot`` in the group of ``port`` (per user: the kernel
    lets only one user's sockets share a port)."""
    uid = os.geteuid() if uid is None else uid
    return f"\0aiotcp/reuseport/{uid}/{port}/{slot}".encode()


@dataclass
class Peer:
    """Another member, as its connection tells us."""

    slot: int | None
    """None until its first state message (a member that connected to us)."""
    listening: bool = True
    keep: frozenset[int] | None = None
    """Buckets outside its share where it has connections; None: not told yet."""


def _bitmap(buckets: frozenset[int]) -> bytes:
    bits = 0
    for b in buckets:
        bits |= 1 << b
    return bits.to_bytes(BUCKETS // 8, "big")


def _buckets(bitmap: bytes) -> frozenset[int]:
    bits = int.from_bytes(bitmap, "big")
    return frozenset(b for b in range(BUCKETS) if bits >> b & 1)


class PortGroup:
    """This process's membership in the group of one port."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, port: int, on_change: Callable[[], None]
    ) -> None:
        """``on_change`` is called whenever ``share`` changes (the filter must follow)."""
        self.loop = loop
        self.port = port
        self._on_change: Callable[[], None] = lambda: None  # the caller reads ``share`` after
        self.listening = True
        self._flows: collections.Counter[int] = collections.Counter()
        """Our connections on the port, per bucket."""
        self._peers: dict[socket.socket, Peer] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self._server, self.slot = self._take_slot()
        self.share = FlowShare(syn=())
        self._keep: frozenset[int] = frozenset()
        self.closed = False
        try:
            self._server.listen(MAX_SLOTS)
            loop.add_reader(self._server.fileno(), self._on_connect)
            for slot in range(MAX_SLOTS):
                if slot != self.slot:
                    self._connect(slot)
        except BaseException:
            self.close()
            raise
        self._update(announce=True)
        self._on_change = on_change

    # -- membership ------------------------------------------------------------------
    def _take_slot(self) -> tuple[socket.socket, int]:
        for slot in range(MAX_SLOTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_NONBLOCK)
            try:
                sock.bind(slot_address(self.port, slot))
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    continue
                raise
            return sock, slot
        raise OSError(errno.EADDRINUSE, f"{MAX_SLOTS} aiotcp workers already share {self.port}")

    def _connect(self, slot: int) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.settimeout(1.0)  # a member's backlog is never full for long
        try:
            sock.connect(slot_address(self.port, slot))
        except OSError:  # ECONNREFUSED: nobody holds the slot (or not yet listening)
            sock.close()
            return
        sock.setblocking(False)
        self._add_peer(sock, slot)

    def _on_connect(self) -> None:
        """A member that joined after us connects: its state follows at once."""
        while True:
            try:
                sock, _ = self._server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self.counters["group_accept_errors"] += 1
                return
            sock.setblocking(False)
            self._add_peer(sock, None)

    def _add_peer(self, sock: socket.socket, slot: int | None) -> None:
        uid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, _SO_PEERCRED, 12))[1]
        if uid != os.geteuid():  # the kernel would not let that user share the port
            sock.close()
            self.counters["group_foreign_peers"] += 1
            return
        self._peers[sock] = Peer(slot)
        self.loop.add_reader(sock.fileno(), self._on_message, sock)
        # A newcomer's state is waiting: taking it in gives up its share first, and
        # only then do we answer, which is what lets it take that share (``_update``).
        self._on_message(sock)
        self._send_state(sock)
        if slot is not None:
            self._update(announce=False)

    def _on_message(self, sock: socket.socket) -> None:
        peer = self._peers.get(sock)
        if peer is None:
            return
        changed = False
        while True:
            try:
                data = sock.recv(_STATE.size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:  # the member is gone (or closed its membership)
                self._drop_peer(sock)
                self._update(announce=False)
                return
            if len(data) != _STATE.size or data[0] != _VERSION:
                self.counters["group_bad_messages"] += 1
                continue
            _, listening, slot, bitmap = _STATE.unpack(data)
            peer.slot, peer.listening, peer.keep = slot, bool(listening), _buckets(bitmap)
            changed = True
        if changed:
            self._update(announce=False)

    def _drop_peer(self, sock: socket.socket) -> None:
        self._peers.pop(sock, None)
        with contextlib.suppress(Exception):
            self.loop.remove_reader(sock.fileno())
        sock.close()

    def members(self) -> list[int]:
        """The slots of the listening members, this one included if it listens:
        they split the buckets between them (``share_of``)."""
        slots = {p.slot for p in self._peers.values() if p.slot is not None and p.listening}
        if self.listening:
            slots.add(self.slot)
        return sorted(slots)

    # -- our flows -------------------------------------------------------------------
    def flow_added(self, bucket: int) -> None:
        self._flows[bucket] += 1
        if self._flows[bucket] == 1 and not in_ranges(bucket, self.share.syn):
            self._update(announce=True)

    def flow_removed(self, bucket: int) -> None:
        self._flows[bucket] -= 1
        if self._flows[bucket] <= 0:
            del self._flows[bucket]
            if bucket in self._keep:
                self._update(announce=True)

    def has_flows(self) -> bool:
        return bool(self._flows)

    def stop_listening(self) -> None:
        """No new flows for us; the ones we have stay ours until they end."""
        if self.listening:
            self.listening = False
            self._update(announce=True)

    def may_reset(self, bucket: int) -> bool:
        """May a segment of ``bucket`` that matches nothing of ours be answered with
        a RST?  Only if the bucket is in our share and no other member might have a
        connection there (one told us none, or the bucket was never its)."""
        if not in_ranges(bucket, self.share.syn):
            return False
        members = self.members()
        for peer in self._peers.values():
            if peer.keep is None or bucket in peer.keep:
                return False
            theirs = share_of(members, peer.slot) if peer.slot is not None else None
            if theirs is not None and theirs[0] <= bucket <= theirs[1]:
                return False  # we disagree on the members: not our answer
        return True

    # -- the share -------------------------------------------------------------------
    def _update(self, *, announce: bool) -> None:
        """Recompute our share from the members and our flows; tell the filter and,
        when what we keep changed (or ``announce``), the other members."""
        if self.closed:
            return
        # A member we reached takes part only once it has answered: it gave up what
        # the new share takes before answering, so no SYN is ever admitted twice.
        waiting = any(p.keep is None for p in self._peers.values() if p.slot is not None)
        mine = share_of(self.members(), self.slot) if self.listening and not waiting else None
        syn = () if mine is None else ((mine[0], mine[1]),)
        keep = frozenset(b for b in self._flows if not in_ranges(b, syn))
        share = FlowShare(syn=syn, keep=to_ranges(keep))
        if keep != self._keep or announce:
            self._keep = keep
            for sock in list(self._peers):
                self._send_state(sock)
        if share != self.share:
            self.share = share
            self.counters["group_share_changes"] += 1
            self._on_change()

    def _send_state(self, sock: socket.socket) -> None:
        message = _STATE.pack(_VERSION, self.listening, self.slot, _bitmap(self._keep))
        try:
            sock.send(message)
        except (BlockingIOError, InterruptedError):
            self.counters["group_state_not_sent"] += 1
        except OSError:  # gone: its EOF will tell
            pass

    def info(self) -> dict[str, object]:
        return {
            "port": self.port,
            "slot": self.slot,
            "members": self.members(),
            "listening": self.listening,
            "syn": list(self.share.syn),
            "keep": list(self.share.keep),
        }

    def close(self) -> None:
        """Leave the group: the other members take our share at once."""
        if self.closed:
            return
        self.closed = True
        for sock in list(self._peers):
            self._drop_peer(sock)
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._server.fileno())
        self._server.close()
