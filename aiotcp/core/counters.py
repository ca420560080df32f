"""A connection's statistics: what ``info()``, ``ss`` and the tests read.

A module of its own because both the connection and its loss recovery
(``aiotcp.core.recovery``) count into the same object.
"""

from __future__ import annotations

from typing import Final


class Counters:
    """Per-connection statistics (``info()``; ``nstat``-like names).

    A plain class, not a dataclass: compiled, its defaults are set natively, where a
    dataclass's generated ``__init__`` runs interpreted for every connection.
    """

    segments_in: int = 0
    segments_out: int = 0
    acks_coalesced: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    retransmits: int = 0
    rto_expirations: int = 0
    fast_retransmits: int = 0
    sack_retransmits: int = 0
    tlp_probes: int = 0
    frames_deferred: int = 0
    dsacks_received: int = 0
    sack_reorder: int = 0
    reno_reorder: int = 0
    ts_reorder: int = 0
    ce_received: int = 0
    ecn_reductions: int = 0
    dup_acks: int = 0
    challenge_acks: int = 0
    ooo_segments: int = 0
    ooo_dropped: int = 0
    unacceptable_segments: int = 0
    paws_rejected: int = 0
    zero_window_probes: int = 0
    keepalive_probes: int = 0
    rst_in: int = 0
    rst_out: int = 0
    icmp_soft_errors: int = 0
    pmtu_reductions: int = 0
    mtu_black_holes: int = 0
    mtu_probes: int = 0
    mtu_probes_lost: int = 0
    undo_dsack: int = 0
    undo_eifel: int = 0
    undo_frto: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTER_NAMES}


COUNTER_NAMES: Final = (  # the attributes above, in order (compiled classes keep no annotations)
    "segments_in",
    "segments_out",
    "acks_coalesced",
    "bytes_in",
    "bytes_out",
    "retransmits",
    "rto_expirations",
    "fast_retransmits",
    "sack_retransmits",
    "tlp_probes",
    "frames_deferred",
    "dsacks_received",
    "sack_reorder",
    "reno_reorder",
    "ts_reorder",
    "ce_received",
    "ecn_reductions",
    "dup_acks",
    "challenge_acks",
    "ooo_segments",
    "ooo_dropped",
    "unacceptable_segments",
    "paws_rejected",
    "zero_window_probes",
    "keepalive_probes",
    "rst_in",
    "rst_out",
    "icmp_soft_errors",
    "pmtu_reductions",
    "mtu_black_holes",
    "mtu_probes",
    "mtu_probes_lost",
    "undo_dsack",
    "undo_eifel",
    "undo_frto",
)
