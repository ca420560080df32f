"""Generated scenarios: segment kind x state x sequence position, and reorderings.

In the style of the FreeBSD tcp-testsuite: for each state the script reaches
(SYN-RECEIVED, ESTABLISHED, CLOSE-WAIT, FIN-WAIT-1, FIN-WAIT-2, CLOSING, LAST-ACK,
TIME-WAIT), the peer injects one segment of a kind (RST, RST-ACK, SYN, SYN-ACK, bare
ACK, data, FIN; no data or FIN after the peer's own FIN, no SYN-ACK in SYN-RECEIVED)
at one sequence position relative to the receive window of the endpoint under test,
and the script asserts what RFC 9293 §3.10.7.4 and RFC 5961 say must follow:

========  ============================================================
position  sequence number
========  ============================================================
below     RCV.NXT - 1 (just below the left edge: old)
exact     RCV.NXT (the left edge)
inside    RCV.NXT + 100 (in the window, not the next expected byte)
last      right edge - 1 (the last sequence number the window admits)
beyond    the right edge (just above the window)
========  ============================================================

The right edge is whatever the endpoint under test advertised (``edge`` in the
script format), so the same script holds for Linux's 64240-byte window and
aiotcp's 65535.  Then the connection must still be there: a write in ESTABLISHED and
CLOSE-WAIT; in FIN-WAIT-1, CLOSING and LAST-ACK, where the peer's segments keep
acknowledging SND.UNA so the state stays, our FIN retransmitted after the RTO (0.2 s
on both stacks) as the next segment, which also checks nothing was sent before it;
in TIME-WAIT a retransmission of the peer's FIN acknowledged.  TIME-WAIT is
generated twice: all kinds without RFC 1337 (Linux's default; ``rfc1337=false``
for aiotcp's RSTs), and the RSTs again with it (``tcp_rfc1337=1``, aiotcp's
default): every RST ignored.

``generate_paws`` repeats the ESTABLISHED cases with timestamps and an old TSval,
``generate_reorderings`` adds all 120 arrival orders of five segments,
``generate_sack_reorderings`` 24 of them with SACK blocks checked.  The
files are written to ``aiotcp/conformance/scripts/{matrix,paws,reorder,reorder-sack}/`` by
``python -m aiotcp.conformance.matrix`` and committed, so each case can be read,
run alone and diffed; a test checks they match this generator.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

POSITIONS = ("below", "exact", "inside", "last", "beyond")
KINDS = ("rst", "rst-ack", "syn", "syn-ack", "ack", "data", "fin")
_NO_SYN_ACK = ("rst", "rst-ack", "syn", "ack", "data", "fin")
"""SYN-RECEIVED and the PAWS set: no SYN-ACK case."""
AFTER_PEER_FIN = ("rst", "rst-ack", "syn", "syn-ack", "ack")
"""Data or a FIN after the peer's FIN make no sense."""

_OPEN = """listen
< S 0:0(0) win 65535 <mss link>
> S. 0:0(0) ack 1 <mss link>
< . 1:1(0) ack 1 win 65535
accept"""


@dataclass(frozen=True)
class State:
    """How a script reaches a state, and the sequence numbers there."""

    name: str
    setup: str
    rcv_nxt: int
    """RCV.NXT of the endpoint under test, relative to the peer's ISN."""
    snd_nxt: int
    """SND.NXT of the endpoint under test, relative to its ISN."""
    kinds: tuple[str, ...]
    can_write: bool
    why: str
    peer_ack: int | None = None
    """SND.UNA as the peer acknowledges it (default: ``snd_nxt``); below ``snd_nxt``
    while our FIN is unacknowledged, so the injected segment leaves the state alone."""
    fin_pending: bool = False
    """Our FIN is unacknowledged: its retransmission (after the RTO, ~0.2 s after
    the RTT sample of the handshake) is the liveness check, and being the next
    segment it also stands for the ``silence`` of the other states."""
    time_wait: bool = False
    """TIME-WAIT: the liveness check is the peer's FIN retransmitted, acknowledged."""
    rfc1337: bool = False
    """TIME-WAIT with RFC 1337 on (on Linux too): every RST is ignored."""
    rst_headers: str = ""
    """Extra header lines (sysctls, aiotcp options) of the RST and RST-ACK cases."""

    @property
    def una(self) -> int:
        return self.snd_nxt if self.peer_ack is None else self.peer_ack


_FIN_WAIT_1 = _OPEN + "\nshutdown\n> F. 1:1(0) ack 1"
_PEER_FIN = "\n< F. 1:1(0) ack 1 win 65535\n> . 1:1(0) ack 2\nread eof"

STATES = (
    State("established", _OPEN, 1, 1, KINDS, True, "after a passive open"),
    State("close-wait", _OPEN + _PEER_FIN, 2, 1, AFTER_PEER_FIN, True, "after the peer's FIN"),
    State(
        "fin-wait-2",
        _OPEN + "\nshutdown\n> F. 1:1(0) ack 1\n< . 1:1(0) ack 2 win 65535",
        1,
        2,
        KINDS,
        False,
        "after our FIN (shutdown) was acknowledged",
    ),
    State(
        "fin-wait-1",
        _FIN_WAIT_1,
        1,
        2,
        KINDS,
        False,
        "after our FIN (shutdown), not yet acknowledged",
        peer_ack=1,
        fin_pending=True,
    ),
    State(
        "closing",
        _FIN_WAIT_1 + "\n< F. 1:1(0) ack 1 win 65535\n> . 2:2(0) ack 2\nread eof",
        2,
        2,
        AFTER_PEER_FIN,
        False,
        "FINs crossed: the peer's acknowledged, ours not",
        peer_ack=1,
        fin_pending=True,
    ),
    State(
        "last-ack",
        _OPEN + _PEER_FIN + "\nclose\n> F. 1:1(0) ack 2",
        2,
        2,
        AFTER_PEER_FIN,
        False,
        "after the peer's FIN and our FIN (close), not yet acknowledged",
        peer_ack=1,
        fin_pending=True,
    ),
    State(
        "time-wait",
        _OPEN + "\nclose\n> F. 1:1(0) ack 1\n< F. 1:1(0) ack 2 win 65535\n> . 2:2(0) ack 2",
        2,
        2,
        AFTER_PEER_FIN,
        False,
        "our FIN acknowledged by the peer's FIN; RSTs without RFC 1337",
        time_wait=True,
        rst_headers="aiotcp: rfc1337=false",
    ),
    State(
        "time-wait-rfc1337",
        _OPEN + "\nclose\n> F. 1:1(0) ack 1\n< F. 1:1(0) ack 2 win 65535\n> . 2:2(0) ack 2",
        2,
        2,
        ("rst", "rst-ack"),
        False,
        "our FIN acknowledged by the peer's FIN; RFC 1337 on",
        time_wait=True,
        rfc1337=True,
        rst_headers="linux-sysctl: net.ipv4.tcp_rfc1337=1",
    ),
)


SYN_RECEIVED = State(
    "syn-received",
    "listen\n< S 0:0(0) win 65535 <mss link>\n> S. 0:0(0) ack 1 <mss link>",
    1,
    1,
    _NO_SYN_ACK,
    False,
    "after our SYN-ACK, before the handshake's ACK",
)


def _case_syn_received(kind: str, position: str) -> tuple[str, str]:
    """SYN-RECEIVED (passive): like the synchronized states, except that an
    acceptable ACK completes the handshake, a RST at RCV.NXT returns to LISTEN and a
    duplicate of the original SYN is answered with the SYN-ACK again."""
    ack_reply = "> . 1:1(0) ack 1"
    complete = ["< . 1:1(0) ack 1 win 65535", "accept"]
    in_window = position in ("exact", "inside", "last")
    if kind in ("rst", "rst-ack"):
        ack = "" if kind == "rst" else " ack 1"
        lines = [f"< {'R' if kind == 'rst' else 'R.'} {_zero(position, 1)}{ack} win 0"]
        if position == "exact":
            what = "a RST at RCV.NXT returns a passive open to LISTEN (RFC 9293 §3.10.7.4)"
            return what, "\n".join([*lines, "< . 1:1(0) ack 1 win 65535", "> R 1:1(0)"])
        if in_window:
            what = "a RST in the window but not at RCV.NXT gets a challenge ACK (RFC 5961 §3.2)"
            lines.append(ack_reply)
        else:
            what = "a RST outside the window is dropped silently (RFC 5961 §3.2)"
            lines.append("silence 0.2")
        return what, "\n".join(lines + complete)
    if kind == "syn":
        lines = [f"< S {_zero(position, 1)} win 65535 <mss link>"]
        if position == "below":  # seq 0: the original SYN again
            what = "a duplicate of the SYN is answered with the same SYN-ACK (RFC 9293 §3.5)"
            lines.append("> S. 0:0(0) ack 1 <mss link>")
        elif position == "beyond":
            what = "a SYN outside the window is unacceptable: an ACK answers it (RFC 9293)"
            lines.append(ack_reply)
        else:
            what = (
                "an in-window SYN returns a passive open to LISTEN (RFC 9293 §3.10.7.4, "
                "fourth check), silently"
            )
            return what, "\n".join(
                [*lines, "silence 0.2", "< . 1:1(0) ack 1 win 65535", "> R 1:1(0)"]
            )
        return what, "\n".join(lines + complete)
    length = {"ack": 0, "data": 10 if position in ("exact", "inside") else 1, "fin": 0}[kind]
    flags = {"ack": ".", "data": "P.", "fin": "F."}[kind]
    seq = _seq(position, 1, length) if length else _zero(position, 1)
    lines = [f"< {flags} {seq} ack 1 win 65535"]
    if not in_window:
        what = f"an unacceptable {kind} segment is answered with an ACK (RFC 9293 §3.10.7.4)"
        return what, "\n".join([*lines, ack_reply, *complete])
    what = f"an acceptable {kind} segment with a good ACK completes the handshake"
    if kind == "ack":
        lines.append("silence 0.2")
    elif position != "exact":
        what += ", and being beyond RCV.NXT gets a duplicate ACK (RFC 5681 §4.2)"
        lines.append(ack_reply)
    elif kind == "data":
        what += ", and its bytes are delivered"
        lines += ["> . 1:1(0) ack 11", "accept", "read 10"]
        return what + " (RFC 9293 §3.10.7.4)", "\n".join(lines)
    else:
        what += ", and the FIN takes it to CLOSE-WAIT"
        lines += ["> . 1:1(0) ack 2", "accept", "read eof"]
        return what + " (RFC 9293 §3.10.7.4)", "\n".join(lines)
    return what + " (RFC 9293 §3.10.7.4)", "\n".join([*lines, "accept"])


def _seq(position: str, rcv: int, length: int) -> str:
    """``SEQ:END(LEN)`` for a segment of ``length`` at ``position``."""
    if position == "below":
        start = rcv - 1
    elif position == "exact":
        start = rcv
    elif position == "inside":
        start = rcv + 100
    elif position == "last":
        return f"edge-1:edge{length - 1:+d}({length})" if length != 1 else "edge-1:edge(1)"
    else:
        return f"edge:edge+{length}({length})" if length else "edge:edge(0)"
    return f"{start}:{start + length}({length})"


def _zero(position: str, rcv: int) -> str:
    if position == "last":
        return "edge-1:edge-1(0)"
    return _seq(position, rcv, 0)


RETRANSMITTED_FIN = "+0.3 > F."
"""Our FIN again after the RTO: 0.2 s (the minimum RTO of both stacks; the handshake
gave an RTT sample of well under a millisecond), expected 0.1 to 0.5 s after the
previous event (``~0.2``)."""


def _case(state: State, kind: str, position: str) -> tuple[str, str]:
    """(what the case checks, the timeline after the state is reached)."""
    rcv, snd, una = state.rcv_nxt, state.snd_nxt, state.una
    ack_reply = f"> . {snd}:{snd}(0) ack {rcv}"
    in_window = position in ("exact", "inside", "last")
    after = rcv  # RCV.NXT once the segment is processed (for the liveness write)
    gone = False
    if kind in ("rst", "rst-ack"):
        flags, ack = ("R", "") if kind == "rst" else ("R.", f" ack {una}")
        lines = [f"< {flags} {_zero(position, rcv)}{ack} win 0"]
        if state.rfc1337:
            what = "with RFC 1337 a RST in TIME-WAIT is ignored, wherever it is (RFC 1337 §3)"
            lines.append("silence 0.2")
        elif position == "exact":
            what = "a RST at RCV.NXT resets the connection (RFC 5961 §3.2)"
            gone = True
        elif in_window:
            what = "a RST in the window but not at RCV.NXT gets a challenge ACK (RFC 5961 §3.2)"
            # Timed in TIME-WAIT, where Linux stays silent: fail fast, not after 3 s.
            lines.append(f"+0 {ack_reply} ~0.1" if state.time_wait else ack_reply)
        else:
            what = "a RST outside the window is dropped silently (RFC 5961 §3.2; RFC 9293)"
            lines.append("silence 0.2")
    elif kind == "syn" and state.time_wait and position in ("inside", "last", "beyond"):
        lines = [f"< S {_zero(position, rcv)} win 65535 <mss link>"]
        ack = f"{rcv + 101}" if position == "inside" else "*"  # edge+1: the stack's window
        lines.append(f"> S. 0:0(0) ack {ack} <mss link>")
        what = (
            "a SYN above RCV.NXT reopens the connection from TIME-WAIT: the listener "
            "answers it with a SYN-ACK (RFC 9293 §3.6.1 MAY, RFC 6191 without timestamps)"
        )
        return what, "\n".join(lines)
    elif kind in ("syn", "syn-ack"):
        if kind == "syn":
            lines = [f"< S {_zero(position, rcv)} win 65535 <mss link>", ack_reply]
        else:
            lines = [f"< S. {_zero(position, rcv)} ack {una} win 65535 <mss link>", ack_reply]
        what = (
            f"a {kind.upper()} in a synchronized state gets a challenge ACK, wherever it is "
            "(RFC 5961 §4)"
        )
    elif kind == "ack":
        lines = [f"< . {_zero(position, rcv)} ack {una} win 65535"]
        if in_window:
            what = "an acceptable bare ACK is processed without a reply (RFC 9293 §3.10.7.4)"
            lines.append("silence 0.2")
        else:
            what = "an unacceptable bare ACK is answered with an ACK (RFC 9293 §3.10.7.4)"
            lines.append(ack_reply)
    elif kind == "data":
        length = 10 if position in ("exact", "inside") else 1
        lines = [f"< P. {_seq(position, rcv, length)} ack {una} win 65535"]
        if position == "exact":
            what = "in-order data is acknowledged and delivered (RFC 9293 §3.10.7.4)"
            after = rcv + length
            lines += [f"> . {snd}:{snd}(0) ack {after}", f"read {length}"]
        elif in_window:
            what = "out-of-order data in the window gets an immediate duplicate ACK (RFC 5681 §4.2)"
            lines.append(ack_reply)
        else:
            what = "data outside the window is answered with an ACK and dropped (RFC 9293)"
            lines.append(ack_reply)
    else:  # fin
        lines = [f"< F. {_zero(position, rcv)} ack {una} win 65535"]
        if position == "exact":
            what = "a FIN at RCV.NXT is acknowledged and read returns EOF (RFC 9293 §3.10.7.4)"
            after = rcv + 1
            lines += [f"> . {snd}:{snd}(0) ack {after}", "read eof"]
        elif in_window:
            what = "a FIN beyond RCV.NXT (a hole before it) gets a duplicate ACK (RFC 9293)"
            lines.append(ack_reply)
        else:
            what = "a FIN outside the window is answered with an ACK and dropped (RFC 9293)"
            lines.append(ack_reply)
    if gone:
        lines += [
            f"< . {rcv}:{rcv}(0) ack {una} win 65535",
            f"> R {una}:{una}(0)",
        ]
    elif state.can_write:
        lines += ["write 3", f"> P. {snd}:{snd + 3}(3) ack {after}"]
    elif state.fin_pending:
        # The retransmitted FIN must be the next segment, after the RTO: no reply
        # before it, and no retransmission triggered by the injected segment.
        lines = [line for line in lines if not line.startswith("silence ")]
        lines.append(f"{RETRANSMITTED_FIN} {snd - 1}:{snd - 1}(0) ack {after} ~0.2")
    elif state.time_wait:
        lines += [f"< F. {rcv - 1}:{rcv - 1}(0) ack {una} win 65535", ack_reply]
    return what, "\n".join(lines)


EDGE_INCLUSIVE = (
    "Linux's tcp_sequence() admits a zero-length segment at exactly RCV.NXT+RCV.WND "
    "(RFC 9293 §3.10.7.4: SEG.SEQ < RCV.NXT+RCV.WND), so it treats it as in the window"
)
RST_AFTER_FIN = (
    "Linux also accepts a RST at RCV.NXT-1 in CLOSE-WAIT/CLOSING/LAST-ACK "
    "(tcp_reset_check(): peers that reset with their FIN's sequence number); "
    "RFC 5961 §3.2 drops it as outside the window"
)


SYN_IN_SYN_RECEIVED = (
    "Linux answers an in-window SYN in SYN-RECEIVED with <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> "
    "as it drops the half-open connection; RFC 9293 returns to LISTEN without a word"
)
PAWS_OLD_ACK = (
    "Linux (PAWS_OLD_ACK, 6.15+) drops an old pure ACK that fails PAWS without the ACK "
    "RFC 7323 §5.3 R1 asks for (observed here for one below RCV.NXT)"
)
TIME_WAIT_EXACT_ONLY = (
    "Linux's TIME-WAIT (tcp_timewait_state_process()) takes only a segment at exactly "
    "RCV.NXT as in the window and acknowledges any other; RFC 9293 §3.10.7.4: an "
    "acceptable bare ACK needs no answer"
)
TIME_WAIT_RST_SILENT = (
    "Linux's TIME-WAIT (tcp_timewait_state_process()) drops a RST that is not at exactly "
    "RCV.NXT silently; RFC 5961 §3.2 answers one in the window with a challenge ACK"
)
DIVERGES_AT = {
    TIME_WAIT_EXACT_ONLY: ("silence ",),
    TIME_WAIT_RST_SILENT: ("+0 > . ",),
    PAWS_OLD_ACK: ("> . ",),
    SYN_IN_SYN_RECEIVED: ("silence ",),
    # RST: a challenge ACK (before our retransmitted FIN); bare ACK: no answer
    EDGE_INCLUSIVE: ("silence ", "> . ", RETRANSMITTED_FIN),
    RST_AFTER_FIN: ("write ", RETRANSMITTED_FIN),  # the RST was taken: the connection is gone
}
"""For each difference, the first line (by prefix) of the case where Linux departs."""


def _mark_divergence(body: str, prefixes: tuple[str, ...]) -> str:
    """Mark with ``!`` the first line after the injected segment that starts with
    one of ``prefixes``: where Linux must fail (see the script format)."""
    lines = body.split("\n")
    for i, line in enumerate(lines[1:], 1):
        if line.startswith(prefixes):
            lines[i] = "! " + line
            return "\n".join(lines)
    raise AssertionError(f"no line starting with {prefixes} in:\n{body}")


def linux_differs(state: State, kind: str, position: str) -> str:
    """Why Linux fails a case that asserts the RFC, or ``""`` when it should pass."""
    if state.name == "syn-received" and kind == "syn" and position in ("exact", "inside", "last"):
        return SYN_IN_SYN_RECEIVED
    if state.time_wait:
        if kind == "ack" and position in ("inside", "last"):
            return TIME_WAIT_EXACT_ONLY
        if kind in ("rst", "rst-ack") and position in ("inside", "last") and not state.rfc1337:
            return TIME_WAIT_RST_SILENT
        return ""
    if kind in ("rst", "rst-ack", "ack") and position == "beyond":
        return EDGE_INCLUSIVE
    after_fin = ("close-wait", "closing", "last-ack")
    if state.name in after_fin and kind in ("rst", "rst-ack") and position == "below":
        return RST_AFTER_FIN
    return ""


ACCEPTABILITY = "RFC9293-3.10.7.4"


def covers(state: State, kind: str, position: str) -> str:
    """The ``covers:`` labels of a matrix case (see ``aiotcp.conformance.musts``).

    Every case exercises the §3.10.7.4 steps (it has no MUST number); RSTs are RFC
    5961 §3 (RFC 1337 in TIME-WAIT with it on), SYNs and SYN-ACKs in a synchronized
    state §4 (but a SYN above RCV.NXT reopens TIME-WAIT: RFC 9293 §3.6.1), out-of-order
    data RFC 5681 §4.2's immediate ACK.  In SYN-RECEIVED a RST at RCV.NXT and an
    in-window SYN return a passive open to LISTEN: the passive/active memory of MUST-11.
    """
    labels = [ACCEPTABILITY]
    in_window = position in ("exact", "inside", "last")
    if kind in ("rst", "rst-ack") and state.rfc1337:
        labels.append("RFC1337")
    elif kind in ("rst", "rst-ack"):
        labels.append("RFC5961-3")
    elif kind == "syn" and state.time_wait and position in ("inside", "last", "beyond"):
        labels.append("RFC9293-3.6")
    elif kind in ("syn", "syn-ack") and state is not SYN_RECEIVED:
        labels.append("RFC5961-4")
    elif kind == "data" and position in ("inside", "last"):
        labels.append("RFC5681-4.2")
    if state is SYN_RECEIVED and (
        (kind in ("rst", "rst-ack") and position == "exact") or (kind == "syn" and in_window)
    ):
        labels.insert(0, "MUST-11")
    return ", ".join(labels)


def generate() -> dict[str, str]:
    """``{relative path: script text}`` for every case of the matrix."""
    out: dict[str, str] = {}
    for state in (*STATES, SYN_RECEIVED):
        for kind in state.kinds:
            for position in POSITIONS:
                if state is SYN_RECEIVED:
                    what, body = _case_syn_received(kind, position)
                else:
                    what, body = _case(state, kind, position)
                tail = " then the connection still works" if "write 3" in body else ""
                if "> R " in body:
                    tail = " and a later segment finds no connection (RST)"
                elif state.fin_pending:
                    tail = " then our FIN is retransmitted, the next segment we send"
                elif state.time_wait and "> S. " not in body:
                    tail = " then a retransmitted FIN is still acknowledged"
                headers = state.rst_headers if kind in ("rst", "rst-ack") else ""
                differs = linux_differs(state, kind, position)
                oracle = f"expect-linux: differs {differs}" if differs else "oracle: linux"
                if differs:
                    body = _mark_divergence(body, DIVERGES_AT[differs])
                out[f"matrix/{state.name}/{kind}-{position}.pkt"] = (
                    "# Generated by `python -m aiotcp.conformance.matrix`: edit the generator.\n"
                    f"# {state.name.upper()} ({state.why}), {kind} {position}:\n"
                    f"# {what}{tail}.\n"
                    f"{oracle}\n"
                    f"covers: {covers(state, kind, position)}\n"
                    + (f"{headers}\n" if headers else "")
                    + f"{state.setup}\n{body}\n"
                )
    return out


def generate_reorderings() -> dict[str, str]:
    """All 120 arrival orders of five 10-byte segments (RFC 9293 §3.10.7.4 and RFC
    5681 §4.2: out-of-order data is held and answered with an immediate duplicate
    ACK; a segment that fills the hole advances the ACK over everything held).

    The peer waits for each ACK before the next segment, so every arrival gets
    exactly one ACK whatever the stack's delayed-ACK policy; the final ``read 50``
    checks the bytes came out in order, once.
    """
    out: dict[str, str] = {}
    for order in itertools.permutations(range(5)):
        have: set[int] = set()
        lines = []
        for i in order:
            have.add(i)
            contiguous = 0
            while contiguous in have:
                contiguous += 1
            start = 1 + 10 * i
            lines.append(f"< P. {start}:{start + 10}(10) ack 1 win 65535")
            lines.append(f"> . 1:1(0) ack {1 + 10 * contiguous}")
        name = "".join(str(i + 1) for i in order)
        out[f"reorder/{name}.pkt"] = (
            "# Generated by `python -m aiotcp.conformance.matrix`: edit the generator.\n"
            f"# Five 10-byte segments arrive in the order {' '.join(name)}: each out-of-order\n"
            "# one gets a duplicate ACK at once, each hole filled advances the ACK over what\n"
            "# was held, and the application reads the 50 bytes in order (RFC 9293 §3.10.7.4,\n"
            "# RFC 5681 §4.2).\n"
            "oracle: linux\n"
            f"covers: {ACCEPTABILITY}, RFC5681-4.2\n"
            f"{_OPEN}\n" + "\n".join(lines) + "\nread 50\n"
        )
    return out


_OPEN_TS = """listen
< S 0:0(0) win 65535 <mss link,nop,nop,TS val 1000 ecr 0>
> S. 0:0(0) ack 1 <mss link,nop,nop,TS val * ecr 1000>
< . 1:1(0) ack 1 win 65535 <nop,nop,TS val 1010 ecr *>
accept"""
_OLD_TS = "<nop,nop,TS val 500 ecr *>"
_REPLY_TS = "<nop,nop,TS val * ecr 1010>"


def generate_paws() -> dict[str, str]:
    """ESTABLISHED with timestamps, every kind and position, TSval older than
    TS.Recent: PAWS (RFC 7323 §5.3 R1) makes every segment but a RST unacceptable,
    answered with an ACK that still echoes TS.Recent; a RST is exempt and goes
    through the RFC 5961 checks as usual."""
    out: dict[str, str] = {}
    for kind in _NO_SYN_ACK:
        for position in POSITIONS:
            reply = f"> . 1:1(0) ack 1 {_REPLY_TS}"
            if kind in ("rst", "rst-ack"):
                flags, ack = ("R", "") if kind == "rst" else ("R.", " ack 1")
                lines = [f"< {flags} {_zero(position, 1)}{ack} win 0 {_OLD_TS}"]
                if position == "exact":
                    what = "a RST at RCV.NXT resets even with an old TSval (RFC 7323 §5.3)"
                    lines += ["< . 1:1(0) ack 1 win 65535", "> R 1:1(0)"]
                elif position in ("inside", "last"):
                    what = "an in-window RST with an old TSval gets a challenge ACK (RFC 5961 §3.2)"
                    lines += [reply, "write 3", f"> P. 1:4(3) ack 1 {_REPLY_TS}"]
                else:
                    what = "a RST outside the window is dropped, old TSval or not (RFC 5961 §3.2)"
                    lines += ["silence 0.2", "write 3", f"> P. 1:4(3) ack 1 {_REPLY_TS}"]
            else:
                if kind == "syn":
                    seg = f"S {_zero(position, 1)} win 65535 <mss link,nop,nop,TS val 500 ecr 0>"
                elif kind == "data":
                    length = 10 if position in ("exact", "inside") else 1
                    seg = f"P. {_seq(position, 1, length)} ack 1 win 65535 {_OLD_TS}"
                else:
                    flags = "." if kind == "ack" else "F."
                    seg = f"{flags} {_zero(position, 1)} ack 1 win 65535 {_OLD_TS}"
                what = (
                    f"a {kind} segment with a TSval older than TS.Recent is unacceptable: "
                    "an ACK echoing TS.Recent answers it and it is dropped (RFC 7323 §5.3 R1)"
                )
                lines = [f"< {seg}", reply, "write 3", f"> P. 1:4(3) ack 1 {_REPLY_TS}"]
            differs = ""
            if kind in ("rst", "rst-ack") and position == "beyond":
                differs = EDGE_INCLUSIVE
            elif kind == "ack" and position == "below":
                differs = PAWS_OLD_ACK
            body = "\n".join(lines)
            if differs:
                body = _mark_divergence(body, DIVERGES_AT[differs])
            oracle = f"expect-linux: differs {differs}" if differs else "oracle: linux"
            labels = "RFC7323-5, RFC5961-3" if kind in ("rst", "rst-ack") else "RFC7323-5"
            out[f"paws/{kind}-{position}.pkt"] = (
                "# Generated by `python -m aiotcp.conformance.matrix`: edit the generator.\n"
                f"# ESTABLISHED with timestamps, {kind} {position}, TSval older than TS.Recent:\n"
                f"# {what}.\n"
                f"{oracle}\ncovers: {labels}\n{_OPEN_TS}\n{body}\n"
            )
    return out


_OPEN_SACK = _OPEN.replace("<mss link>", "<mss link,nop,nop,sackOK>")


def generate_sack_reorderings() -> dict[str, str]:
    """The 24 orders in which segment 1 comes last, with SACK negotiated: every
    duplicate ACK must carry the right blocks in the right order (RFC 2018 §4: the
    first block holds the segment that triggered the ACK, then the most recently
    reported ones), and the hole's arrival clears them."""
    out: dict[str, str] = {}
    for rest in itertools.permutations(range(1, 5)):
        order = (*rest, 0)
        blocks: list[set[int]] = []  # most recently updated first
        lines = []
        cumulative = 0
        for i in order:
            start = 1 + 10 * i
            lines.append(f"< P. {start}:{start + 10}(10) ack 1 win 65535")
            if i == cumulative:
                cumulative = i + 1
                while any(cumulative in b for b in blocks):
                    cumulative = max(next(b for b in blocks if cumulative in b)) + 1
                blocks = [b for b in blocks if min(b) > cumulative]
            else:
                touching = [b for b in blocks if i - 1 in b or i + 1 in b]
                merged = {i}.union(*touching)
                blocks = [merged] + [b for b in blocks if b not in touching]
            sack = " ".join(f"{1 + 10 * min(b)}:{11 + 10 * max(b)}" for b in blocks[:4])
            option = f" <nop,nop,sack {sack}>" if sack else ""
            lines.append(f"> . 1:1(0) ack {1 + 10 * cumulative}{option}")
        name = "".join(str(i + 1) for i in order)
        out[f"reorder-sack/{name}.pkt"] = (
            "# Generated by `python -m aiotcp.conformance.matrix`: edit the generator.\n"
            f"# With SACK, five 10-byte segments arrive in the order {' '.join(name)}: each\n"
            "# duplicate ACK carries the received blocks, the one just extended first (RFC\n"
            "# 2018 §4), and the first segment's arrival acknowledges all 50 bytes.\n"
            "oracle: linux\n"
            "covers: RFC2018-4\n"
            f"{_OPEN_SACK}\n" + "\n".join(lines) + "\nread 50\n"
        )
    return out


GENERATED_DIRS = ("matrix", "paws", "reorder", "reorder-sack")


def write(root: Path) -> list[Path]:
    """Write the generated scripts below ``root``; remove stale generated ones."""
    scripts = generate() | generate_paws() | generate_reorderings() | generate_sack_reorderings()
    written = []
    for rel, text in scripts.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    for folder in GENERATED_DIRS:
        for old in sorted((root / folder).rglob("*.pkt")):
            if str(old.relative_to(root)) not in scripts:
                old.unlink()
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "scripts"
    print(f"wrote {len(write(target))} scripts below {target}/{{{','.join(GENERATED_DIRS)}}}")
