"""How a TCP endpoint and a connection are named: an address, and the 4-tuple.

A connection is the 4-tuple (local address, local port, remote address, remote
port), RFC 9293 §3.1's "socket pair".  Every table that finds a connection —
the stack's demultiplexer, a listener's SYN queue — keys it with ``flow_key``,
built here and nowhere else.  Addresses are the packed bytes of the IP header
(4 bytes for IPv4): nothing outside this module depends on their length.
"""

from __future__ import annotations

Address = tuple[bytes, int]
"""An IP address (packed) and a port."""

FlowKey = tuple[bytes, int, bytes, int]
"""(local address, local port, remote address, remote port), from this end's side."""


def flow_key(local_ip: bytes, local_port: int, remote_ip: bytes, remote_port: int) -> FlowKey:
    """The key of the connection between the two endpoints (a received packet's
    destination is the local one)."""
    return (local_ip, local_port, remote_ip, remote_port)
