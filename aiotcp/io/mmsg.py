"""``recvmmsg(2)``: a batch of datagrams, each with its sender's address and control
messages, in one system call and into memory allocated once.

Why: the raw IPv6 socket hands over a segment without its IPv6 header, so the
destination address comes as an ``IPV6_PKTINFO`` control message.  Python's
``socket.recvmsg_into`` builds, for every segment, a result tuple, a list of
control-message tuples with a ``bytes`` each, and the sender's address formatted
as a string that then had to be parsed back: 1.9 µs a segment more than the
IPv4 socket's ``recv_into``, which made receiving over IPv6 cost 20 % more CPU per
MiB (docs/performance.md).  Here the kernel writes the addresses and control
messages into fixed places of one buffer, which the compiled parser
(``aiotcp.io.packet.Ipv6Receiver``) reads in place, and one call takes the
whole burst, so there is no final EAGAIN exception either.

Layout of ``meta``: ``slots`` ``struct mmsghdr`` (64 bytes each on LP64), then as
many ``struct iovec``, then per message a sockaddr room followed by its
control-message room.  Each message lands in a 64 KiB slot of ``arena`` — the largest IPv6
payload, and the largest IPv4 datagram.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import socket
import struct
from typing import Final

SLOT: Final = 65536
"""Room per datagram: an IPv6 payload (or IPv4 datagram) is at most 65535 bytes."""
MMSGHDR: Final = struct.Struct("=QI4xQQQQi4xI4x")
"""``struct mmsghdr`` on LP64: name, namelen, iov, iovlen, control, controllen,
flags, and the received length."""
MMSGHDR_SIZE: Final = MMSGHDR.size
CONTROLLEN_AT: Final = 40
"""Where in an ``mmsghdr`` the kernel writes back: control length, flags, length."""
_IOVEC: Final = struct.Struct("=QQ")

_libc = ctypes.CDLL(None, use_errno=True)
_recvmmsg = _libc.recvmmsg
_recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
_recvmmsg.restype = ctypes.c_int


class MessageRing:
    """One socket's ``recvmmsg`` buffers.  What ``receive`` delivered stays valid
    until the next ``receive``: the packets of a batch are views into ``arena``,
    as the raw socket's promise to its consumers says (``aiotcp.io.rawsock``)."""

    def __init__(
        self, sock: socket.socket, slots: int = 64, name_size: int = 32, control_size: int = 64
    ) -> None:
        self.fd = sock.fileno()
        self.slots = slots
        self.arena = mmap.mmap(-1, slots * SLOT)
        """Anonymous memory: a page is resident once a datagram was written to it,
        where a ``bytearray`` would zero (and so touch) all of it up front."""
        self.view = memoryview(self.arena)
        self.name_size = name_size
        iov_at = slots * MMSGHDR_SIZE
        self.aux_at = iov_at + slots * _IOVEC.size
        """Where message ``i``'s sockaddr is: ``aux_at + i * aux_size``, its control
        messages right after (``name_size`` on): one ``struct`` reads both."""
        self.aux_size = name_size + control_size
        self.meta = bytearray(self.aux_at + slots * self.aux_size)
        # ctypes objects keep the buffers exported: they cannot move.
        self._arena_c = (ctypes.c_char * len(self.arena)).from_buffer(self.arena)
        self._meta_c = (ctypes.c_char * len(self.meta)).from_buffer(self.meta)
        arena_address = ctypes.addressof(self._arena_c)
        self._meta_address = ctypes.addressof(self._meta_c)
        for i in range(slots):
            iov = iov_at + i * _IOVEC.size
            name = self.aux_at + i * self.aux_size
            _IOVEC.pack_into(self.meta, iov, arena_address + i * SLOT, SLOT)
            MMSGHDR.pack_into(
                self.meta,
                i * MMSGHDR_SIZE,
                self._meta_address + name,
                name_size,
                self._meta_address + iov,
                1,
                self._meta_address + name + name_size,
                control_size,
                0,
                0,
            )
        self._headers = bytes(self.meta[:iov_at])
        """The headers as set: the kernel overwrites lengths and flags in each call."""
        self._written = 0
        """How many headers the last call wrote into, to restore before the next."""

    def receive(self, limit: int) -> int:
        """Up to ``limit`` (at most ``slots``) datagrams, message ``i`` at
        ``arena[i * SLOT:]``: how many came.  Raises ``BlockingIOError`` when none
        was waiting, and the ``OSError`` for any other failure.

        One call per batch: a second would overwrite the first's slots, which its
        packets still point into.  A longer burst waits for the next wake-up, whose
        cost is small beside the ``slots`` segments' (docs/performance.md)."""
        if self._written:
            end = self._written * MMSGHDR_SIZE
            self.meta[:end] = self._headers[:end]
        vlen = min(limit, self.slots)
        count: int = _recvmmsg(self.fd, self._meta_address, vlen, socket.MSG_DONTWAIT, None)
        if count < 0:
            code = ctypes.get_errno()
            self._written = 1  # a failed first message may have had its header touched
            raise OSError(code, os.strerror(code))  # BlockingIOError for EAGAIN
        self._written = count
        return count
