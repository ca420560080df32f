"""The state table: rows like ``ss -tanoi`` for ``aiotcp.connections()`` and the CLI.

One row per connection or listener, as plain JSON-able dicts, so the same rows
serve the in-process API, the control socket and the printed table.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable
from typing import Any

from aiotcp.core.connection import Connection
from aiotcp.core.listener import Listener
from aiotcp.core.state import State
from aiotcp.io.packet import format_ip


def _addr(addr: tuple[bytes, int]) -> tuple[str, int]:
    return (format_ip(addr[0]) if addr[0] else "*", addr[1])


def connection_row(conn: Connection, now: float) -> dict[str, Any]:
    row = conn.info_dict(now)
    row["local"], row["remote"] = _addr(conn.local), _addr(conn.remote)
    return row


def listener_row(listener: Listener) -> dict[str, Any]:
    info = dict(listener.info())
    info["local"] = _addr(listener.local)
    # As ss: "*" for a listener of both families, else the family's any-address.
    info["remote"] = ({0: "*", 4: "0.0.0.0"}.get(len(listener.local[0]), "::"), 0)
    info["state"] = "LISTEN"
    return info


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 10 else f"{seconds:.1f}s"


def _bps(bits: float) -> str:
    """ss's rate format: 1.2Mbps, 840Kbps."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if bits >= scale:
            return f"{bits / scale:.1f}{unit}bps"
    return f"{bits:.0f}bps"


def _endpoint(addr: Any) -> str:
    host, port = addr[0], addr[1]
    if ":" in host:
        host = f"[{host}]"  # ss's way
    return f"{host}:{port if port else '*'}"


def format_rows(rows: Iterable[dict[str, Any]]) -> str:
    """A table in ``ss -tanoi``'s layout: queues, endpoints, timers, rtt, cwnd.

    For a listener, Recv-Q is the accept queue and Send-Q the backlog, as in ``ss``.
    """
    header = (
        f"{'State':<13}{'Recv-Q':>7} {'Send-Q':>7} "
        f"{'Local Address:Port':<22} {'Peer Address:Port':<22} Info"
    )
    lines = [header]
    for r in rows:
        if r["state"] == "LISTEN":
            recvq, sendq = r.get("accept_queue", 0), r.get("backlog", 0)
            info = f"syn_queue:{r.get('syn_queue', 0)}"
        else:
            recvq, sendq = r.get("recv_queue", 0), r.get("send_queue", 0)
            parts = [f"timer:({name},{_ms(left)})" for name, left in r.get("timers", {}).items()]
            if r.get("srtt") is not None:
                parts.append(f"rtt:{r['srtt'] * 1000:.3f}/{(r.get('rttvar') or 0) * 1000:.3f}")
            parts.append(f"rto:{_ms(r['rto'])}")
            mss = r.get("mss") or 1
            parts.append(f"mss:{mss} cwnd:{r['cwnd'] // mss}")
            if r["ssthresh"] < 1 << 30:  # ss leaves out an infinite ssthresh too
                parts.append(f"ssthresh:{r['ssthresh'] // mss}")
            retrans = r.get("counters", {}).get("retransmits", 0)
            if retrans:
                parts.append(f"retrans:{retrans}")
            if r.get("reordering", 3) != 3:  # ss shows it only when not the default
                parts.append(f"reordering:{r['reordering']}")
            if r.get("congestion"):
                parts.append(r["congestion"])
            bbr = r.get("congestion_info") or {}
            if "bbr_state" in bbr:
                # ss -i: bbr:(bw:…,mrtt:…,pacing_gain:…,cwnd_gain:…), and the mode.
                mrtt = bbr.get("bbr_min_rtt")
                parts.append(
                    f"bbr:(bw:{_bps(bbr['bbr_bw'] * 8)}"
                    + (f",mrtt:{mrtt * 1000:.3f}" if mrtt is not None else "")
                    + f",pacing_gain:{bbr['bbr_pacing_gain']:g}"
                    + f",cwnd_gain:{bbr['bbr_cwnd_gain']:g}"
                    + f",state:{bbr['bbr_state']})"
                )
            if r.get("pacing_rate"):
                parts.append(f"pacing_rate {_bps(r['pacing_rate'] * 8)}")
            if r.get("delivery_rate"):
                parts.append(f"delivery_rate {_bps(r['delivery_rate'] * 8)}")
            if r.get("paced"):
                parts.append("paced")
            if r.get("options", {}).get("ecn"):
                parts.append("ecn")
            if r.get("soft_error"):
                parts.append(f"soft_err:{errno.errorcode.get(r['soft_error'], r['soft_error'])}")
            info = " ".join(parts)
        lines.append(
            f"{r['state']:<13}{recvq:>7} {sendq:>7} {_endpoint(r['local']):<22} "
            f"{_endpoint(r['remote']):<22} {info}"
        )
    return "\n".join(lines)


def state_filter(name: str | None) -> State | None:
    """The state ``ss --state`` names, in either spelling (``time-wait``, ``TIME_WAIT``);
    ``None`` for no filter.  An unknown name is a ``ValueError`` naming the choices."""
    if not name:
        return None
    key = name.replace("-", "_").upper()
    for st in State:
        if st.name == key:
            return st
    raise ValueError(f"unknown state {name!r}: one of {', '.join(s.value for s in State)}")
