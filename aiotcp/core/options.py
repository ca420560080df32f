"""Every TCP tunable in one place, with the Linux defaults a user would expect.

The asyncio layer turns ``**tcp_options`` keyword arguments into a ``TcpOptions``
with ``TcpOptions().replace(**kwargs)``, which raises ``TypeError`` for a misspelt
name or a value of the wrong type.  Values are read by the core on every use, never
cached, so a test can tweak an option on a live connection.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

#: RFC 9293 §3.7.1 (MUST-15): assume this send MSS when the peer sends no MSS option:
#: 536 over IPv4, 1220 over IPv6 (its 1280-byte minimum MTU less 60 bytes of headers).
DEFAULT_PEER_MSS = 536
DEFAULT_PEER_MSS6 = 1220
#: Receive-buffer autotuning's start and ceiling: Linux's ``tcp_rmem[1]`` and ``[2]``.
RECV_BUFFER_AUTOTUNE_START = 131072
RECV_BUFFER_AUTOTUNE_MAX = 6291456


@dataclass(slots=True)
class TcpOptions:
    """Per-connection tunables.  Times are seconds, sizes bytes."""

    mss: int = 1460
    """MSS we advertise (RFC 9293 §3.7.1); 1460 = 1500-byte Ethernet MTU minus 40."""
    mtu: int | None = None
    """Route MTU; when set, the advertised MSS is ``min(mss, mtu - 40)`` over IPv4,
    ``min(mss, mtu - 60)`` over IPv6 (its header is 20 bytes longer)."""
    nodelay: bool = False
    """Disable Nagle's algorithm (RFC 9293 §3.7.4), like ``TCP_NODELAY``."""
    send_buffer: int = 4194304
    """Send buffer capacity: bytes queued but not yet acknowledged (``SO_SNDBUF``).
    4 MiB is Linux's ``tcp_wmem[2]``, where its send-buffer autotuning ends up on a
    fast path; only bytes really queued use memory.  A smaller buffer, not cwnd,
    limited the flight of bulk sends on veth (docs/performance.md)."""
    recv_buffer: int | None = None
    """Receive buffer capacity, the largest window we offer.  ``None`` (the
    default) autotunes as Linux does: it starts at 128 KiB (``tcp_rmem[1]``) and
    grows to 6 MiB (``tcp_rmem[2]``) while the application reads more than half of
    it per round trip, so only a reader that keeps up gets a large window.  A
    number fixes it, as ``SO_RCVBUF`` does on Linux."""
    window_scaling: bool = True
    """Offer RFC 7323 window scaling (``tcp_window_scaling``)."""
    sack: bool = True
    """Offer RFC 2018 selective acknowledgements (``tcp_sack``)."""
    timestamps: bool = True
    """Offer RFC 7323 timestamps: RTT measurement and PAWS (``tcp_timestamps``)."""
    tos: int = 0
    """``IP_TOS``: the Differentiated Services byte (DSCP << 2, RFC 2474) on every
    segment (RFC 9293 MUST-48).  Its two ECN bits are TCP's own (RFC 3168): what is
    given there is ignored, as Linux ignores it on a TCP socket."""
    ttl: int | None = None
    """``IP_TTL``: the time to live of every segment, 1-255 (RFC 9293 MUST-49);
    None: the host's default (``net.ipv4.ip_default_ttl``)."""
    ecn: bool = False
    """Request and accept Explicit Congestion Notification (RFC 3168): routers mark
    packets instead of dropping them, the window shrinks without a loss.  Off by
    default, as Linux requests it only with ``tcp_ecn=1``."""
    keepalive: bool = False
    """Send keepalive probes on an idle connection (``SO_KEEPALIVE``, RFC 9293 §3.8.4)."""
    keepalive_idle: float = 7200.0
    """Idle time before the first probe (``tcp_keepalive_time``)."""
    keepalive_interval: float = 75.0
    """Time between unanswered probes (``tcp_keepalive_intvl``)."""
    keepalive_count: int = 9
    """Unanswered probes before the connection is dropped (``tcp_keepalive_probes``)."""
    msl: float = 30.0
    """Maximum segment lifetime; TIME_WAIT lasts 2*MSL = 60 s like Linux."""
    fin_wait_2_timeout: float = 60.0
    """How long an orphaned FIN_WAIT_2 waits for the peer's FIN (``tcp_fin_timeout``)."""
    syn_retries: int = 6
    """SYN retransmissions before ``connect`` times out (``tcp_syn_retries``)."""
    synack_retries: int = 5
    """SYN-ACK retransmissions before a half-open connection is dropped."""
    retries: int = 15
    """Data retransmissions before the connection is dropped: R2 (``tcp_retries2``)."""
    retries_r1: int = 3
    """Retransmissions after which a ``DeliveryProblem`` is reported: R1 (``tcp_retries1``)."""
    user_timeout: float = 0.0
    """RFC 5482 / RFC 9293 §3.8.3 user timeout (``TCP_USER_TIMEOUT``); 0 disables it."""
    delayed_ack: bool = True
    """Delay ACKs (RFC 5681 §4.2; RFC 9293 §3.8.6.3)."""
    delayed_ack_timeout: float = 0.040
    """Longest an ACK is delayed (Linux ``TCP_DELACK_MAX``-like 40 ms)."""
    rto_initial: float = 1.0
    """Initial RTO (RFC 6298 §2.1)."""
    rto_min: float = 0.2
    """Lower bound of the RTO (Linux ``TCP_RTO_MIN``; RFC 6298 says 1 s)."""
    rto_max: float = 120.0
    """Upper bound of the RTO (Linux ``TCP_RTO_MAX``; RFC 6298 allows >= 60 s)."""
    congestion: str = "cubic"
    """Congestion control algorithm name (see ``aiotcp.core.congestion``)."""
    initial_window: int = 10
    """Initial congestion window in segments (RFC 6928, Linux default)."""
    slow_start: str = "hystart++"
    """How the first slow start ends: ``"hystart++"`` (RFC 9406: when the RTT starts
    to grow, before the queue overflows), ``"hystart"`` (Linux CUBIC's: ACK trains
    and delay) or ``"standard"`` (RFC 5681: at the first loss).  For NewReno and
    CUBIC."""
    pacing: bool | None = None
    """Space each round trip's data over it at the algorithm's pacing rate, as
    Linux's internal TCP pacing does (frames sized to about a millisecond of it),
    instead of sending each ACK's worth at once.  None: as the algorithm asks —
    BBR paces, NewReno and CUBIC do not (Linux without the fq qdisc)."""
    mtu_probing: int = 0
    """Packetization-layer path MTU discovery (RFC 4821), Linux's ``tcp_mtu_probing``:
    0 off (Linux's default); 1 once retransmission timeouts suggest an ICMP black
    hole (the MSS falls back to ``base_mss``, then probes find the path's size);
    2 always, from ``base_mss`` up.  For paths whose routers' "fragmentation
    needed" never arrives."""
    base_mss: int = 1024
    """Linux's ``tcp_base_mss``: the MSS a suspected black hole falls back to."""
    rfc1337: bool = True
    """Ignore RST in TIME_WAIT (RFC 1337 TIME-WAIT assassination fix)."""
    backlog: int = 128
    """Bound for both the SYN queue and the accept queue of a listener."""
    abort_on_overflow: bool = False
    """RST instead of dropping when the accept queue is full (``tcp_abort_on_overflow``)."""
    syn_cookies: bool = True
    """Answer with SYN cookies when the SYN queue is full (``tcp_syncookies = 1``)."""
    ooo_max_segments: int = 1024
    """Bound on out-of-order ranges held for reassembly; more are dropped.  Linux
    bounds its queue by memory alone; a range count keeps a peer's 1-byte fragments
    cheap, and must still cover every hole of a lossy window: at 5 % loss a 6 MB
    window holds ~200 of them, and a bound of 64 dropped everything past the 64th
    (a kernel BBR sender then resent whole windows)."""
    challenge_ack_limit: int = 1000
    """RFC 5961 §7 challenge ACKs allowed per second (``tcp_challenge_ack_limit``)."""

    @property
    def recv_buffer_max(self) -> int:
        """The receive buffer's ceiling: what the window scale is chosen for."""
        return RECV_BUFFER_AUTOTUNE_MAX if self.recv_buffer is None else self.recv_buffer

    @property
    def recv_buffer_start(self) -> int:
        """The receive buffer a connection starts with."""
        return RECV_BUFFER_AUTOTUNE_START if self.recv_buffer is None else self.recv_buffer

    def advertised_mss(self, ipv6: bool = False) -> int:
        """MSS option value: the configured MSS clipped to the route MTU less the IP
        and TCP headers (RFC 9293 §3.7.1; RFC 8200 §8.3 for IPv6's 40-byte header)."""
        if self.mtu is not None:
            return max(min(self.mss, self.mtu - (60 if ipv6 else 40)), 88)
        return self.mss

    def replace(self, **changes: object) -> TcpOptions:
        """A copy with ``changes``, checked: the way every user-given option enters.

        Like ``setsockopt``, 0 and 1 stand for False and True.  Anything else of the
        wrong type is a ``TypeError`` that names the option, here rather than deep
        in the stack.
        """
        checked = {name: _checked_option(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **checked)  # type: ignore[arg-type]


#: Python types each annotation accepts (``float`` takes ``int``, as in typing).
_ACCEPTED: dict[str, tuple[type, ...]] = {
    "bool": (bool,),
    "int": (int,),
    "int | None": (int, type(None)),
    "bool | None": (bool, type(None)),
    "float": (int, float),
    "str": (str,),
}
_FIELD_TYPES: dict[str, str] = {f.name: str(f.type) for f in dataclasses.fields(TcpOptions)}


def _checked_option(name: str, value: object) -> object:
    annotation = _FIELD_TYPES.get(name)
    if annotation is None:
        raise TypeError(f"unknown TCP option {name!r}")
    if annotation in ("bool", "bool | None") and type(value) is int and value in (0, 1):
        return bool(value)
    accepted = _ACCEPTED[annotation]
    if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
        raise TypeError(f"TCP option {name} must be {annotation}, not {value!r}")
    bounds = _BOUNDS.get(name)
    if bounds is not None and value is not None:
        lo, hi = bounds
        if not lo <= value <= hi:  # type: ignore[operator]
            raise ValueError(f"TCP option {name} must be in {lo}..{hi}, not {value!r}")
    choices = _CHOICES.get(name)
    if choices is not None and value not in choices:
        raise ValueError(f"TCP option {name} must be one of {', '.join(choices)}, not {value!r}")
    if annotation == "float" and isinstance(value, int):
        return float(value)
    return value


#: Options that name one of a few behaviours.
_CHOICES: dict[str, tuple[str, ...]] = {"slow_start": ("hystart++", "hystart", "standard")}


#: Options whose range the IP header fixes (a socket says EINVAL beyond it).
_BOUNDS: dict[str, tuple[int, int]] = {
    "tos": (0, 255),
    "ttl": (1, 255),
    "mtu_probing": (0, 2),
    "base_mss": (48, 65495),
}
