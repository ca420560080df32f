"""A pcap of everything a stack sends and receives, for Wireshark and tcpdump -r.

Link type RAW (101): each record is an IP packet of either version.  IPv4's raw
socket hands us whole datagrams on receive; IPv6's hands over the segment alone,
and on send the kernel builds the IP header, so a minimal one is written here.
A GSO super-segment is recorded as the one large segment it was handed to the
kernel as (tcpdump shows the same on the sender).
Enable with ``Stack(pcap="trace.pcap")`` or ``AIOTCP_PCAP=trace.pcap``.
"""

from __future__ import annotations

import struct
import time
from typing import BinaryIO

from aiotcp.core.checksum import ones_sum

LINKTYPE_RAW = 101
_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_IP = struct.Struct("!BBHHHBBH4s4s")
_IP6 = struct.Struct("!IHBB16s16s")


class PcapWriter:
    def __init__(self, path: str, snaplen: int = 262144) -> None:
        self._f: BinaryIO = open(path, "wb")  # noqa: SIM115 - closed by close()
        self._f.write(_GLOBAL.pack(0xA1B2C3D4, 2, 4, 0, 0, snaplen, LINKTYPE_RAW))
        self.path = path
        self.records = 0
        self._ip_id = 0

    def received(self, datagram: bytes | memoryview) -> None:
        self._write(datagram)

    def received6(self, src: bytes, dst: bytes, tcp: memoryview, tclass: int) -> None:
        """An IPv6 segment as the raw IPv6 socket delivers it (no IP header)."""
        self._write6(src, dst, (tcp,), tclass)

    def sent(self, src: bytes, dst: bytes, *tcp: bytes | bytearray | memoryview) -> None:
        """A TCP segment (header and payload parts) we sent from ``src`` to ``dst``."""
        if len(src) == 16:  # LINKTYPE_RAW takes either version: an IPv6 header
            self._write6(src, dst, tcp, 0)
            return
        length = 20 + sum(len(part) for part in tcp)
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        ip = bytearray(
            _IP.pack(0x45, 0, min(length, 0xFFFF), self._ip_id, 0x4000, 64, 6, 0, src, dst)
        )
        csum = ~ones_sum(ip) & 0xFFFF
        ip[10], ip[11] = csum >> 8, csum & 0xFF
        self._write(bytes(ip) + b"".join(bytes(p) for p in tcp))

    def _write6(
        self, src: bytes, dst: bytes, tcp: tuple[bytes | bytearray | memoryview, ...], tclass: int
    ) -> None:
        payload = sum(len(part) for part in tcp)
        ip6 = _IP6.pack(6 << 28 | tclass << 20, payload, 6, 64, src, dst)
        self._write(ip6 + b"".join(bytes(p) for p in tcp))

    def _write(self, data: bytes | memoryview) -> None:
        now = time.time()
        sec = int(now)
        self._f.write(_RECORD.pack(sec, int((now - sec) * 1e6), len(data), len(data)))
        self._f.write(data)
        self.records += 1

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
