"""The conformance script format (``.pkt``) and its parser.

A script is a timeline in the spirit of packetdrill: what the application on the
endpoint under test does, what the scripted peer injects (``<``) and what it must
see (``>``).  The same script runs against the Linux kernel and against aiotcp
(``aiotcp.conformance.runner``), so it never names either: sequence numbers are
relative to the two ISNs and the application speaks in socket verbs.

Format (one item per line, ``#`` starts a comment)::

    # header: "key: value" lines before the first event
    oracle: linux                       # Linux must pass too (default)
    expect-linux: differs <reason>      # ...or: Linux must FAIL, at the line marked "!"
    linux-sysctl: net.ipv4.tcp_rfc1337=1   # per-namespace sysctl for the Linux run
    aiotcp: rfc1337=true, msl=2         # TcpOptions for the aiotcp run
    tolerance: 0.1                      # default timing tolerance of timed lines (s)
    peer-isn: 0xffffff00                # the peer's ISN (default: 2**32 - 256)
    timeout: 15                         # bound on the whole script (s)
    covers: MUST-7, RFC5961-3           # requirements it checks (aiotcp.conformance.musts)
    ipv4-only: <reason>                 # runs over IPv4 only (or ipv6-only: <reason>)

    # events: [TIME] EVENT
    listen                              # application: listen on the server port
    < S 0:0(0) win 65535 <mss link>     # peer injects a SYN, seq = peer ISN + 0
    > S. 0:0(0) ack 1 <mss link,...>    # the next segment must be this SYN-ACK
    < . 1:1(0) ack 1 win 65535
    accept
    < P. 1:11(10) ack 1 win 65535       # 10 bytes of the peer's stream pattern
    > . 1:1(0) ack 11
    read 10                             # the application reads exactly those bytes
    +0.5 close                          # half a second after the previous event
    > F. 1:1(0) ack 11 ~0.1             # expected right away, +-0.1 s

TIME: ``+t`` is relative to the previous event, ``t`` absolute from the start,
``*`` or nothing means "whenever" (at once for ``<`` and actions; any time up to
the expect timeout for ``>``).  A ``~tol`` at the end of a line overrides the
tolerance.  A timed ``>`` must arrive within ``[t - tol, t + tol]``.

SEGMENTS: ``FLAGS [SEQ:END(LEN)] [ack N] [win N] [urg N] [<OPTIONS>] ["payload"]
[badcsum] [reserved N]``.  Flags are tcpdump's letters (``S F R P U E W`` and ``.``
for ACK); on ``>`` lines a letter followed by ``?`` may or may not be set
(``P?.``).  Sequence numbers are relative to the *sender's* ISN, acks to the
*receiver's* (packetdrill's convention): ``< ... ack 1`` acknowledges the SYN of
the endpoint under test, ``> ... ack 1`` the peer's.  Before the endpoint under
test has sent a SYN its ISN is unknown, so numbers relative to it are absolute
(a RST answering a bare SYN: ``> R. 0:0(0) ack 1``).  On ``<`` lines ``edge+N``
is relative to the right edge of the window the endpoint under test advertised last
(``< R edge:edge(0)``: a RST just beyond the window; ``edge-1:edge(1)``: the last
byte it accepts), so window-edge scenarios hold whatever window each stack offers.
On ``>`` lines ``*`` stands for any value, and an absent ``ack``/``win``/``urg`` is
not checked.  Payload bytes are a fixed pattern indexed by stream offset in both
directions, so reassembly is checked for free: injected data carries the pattern,
``read N`` checks it, and a ``>`` segment's bytes are checked against what the
application wrote.

OPTIONS: ``<mss 1460,sackOK,TS val 100 ecr 0,nop,wscale 7,sack 1:11 21:31,eol>``.
``mss link`` is the MSS of the link both hosts are on: its MTU less the IP and TCP
headers of the address family the run uses (1460 over IPv4, 1440 over IPv6, on the
1500-byte veth pair), what a stack advertises by default.
On ``<`` lines they are encoded in the order written (``nop``/``eol`` included),
plus ``kind K HEX`` (an option with a given kind and body) and ``bytes HEX``
(verbatim bytes, e.g. an illegal length); ``TS val V ecr *`` echoes the last TS val
the endpoint under test sent.  On ``>`` lines the listed options must be present
with those values (``*`` any), others absent (``nop``/``eol`` are layout, never
checked); ``...`` in the list allows others, ``<...>`` alone ignores options
entirely.  A ``>`` line without a list expects no options.

ACTIONS (the application on the endpoint under test, run one at a time in order,
like packetdrill's syscall thread): ``listen [BACKLOG]``, ``accept``, ``connect``,
``write N`` / ``write "text"``, ``read N`` / ``read "text"`` / ``read eof``,
``shutdown`` (SHUT_WR, ``write_eof``), ``close``, ``abort`` (linger 0: RST),
``setopt name=value`` (a ``TcpOptions`` name: before ``connect``/``listen`` it
applies to the new socket, after it to the live connection; on Linux the names map
to socket options, or to sysctls in host A for those only the kernel has),
``wait`` (until every earlier action has finished).  Any action may end with
``=> ERRNO`` (``connect => ECONNREFUSED``, ``read 1 => ECONNRESET``): it must fail
with that error; ``=> *`` leaves the outcome unchecked (the call may even still be
blocked when the script ends).  Every other call must have returned by the end.
``silence T`` asserts that no segment arrives for T seconds.

ADDRESS FAMILIES: every script runs over IPv4 and over IPv6 (the runner's
``family``), so a script never names an address and never states what depends on
the family's header sizes with a number (``mss link``, not ``mss 1460``).  The few
scenarios whose RFC text itself differs between the families (the default send MSS,
536 or 1220 bytes) say ``ipv4-only: <reason>`` or ``ipv6-only: <reason>``, and come
in pairs.

A line starting with ``!`` is where Linux departs from the script in an
``expect-linux: differs`` script: Linux must fail exactly there (and only such
scripts may mark one), so a declared difference cannot hide an unrelated failure.
"""

from __future__ import annotations

import contextlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiotcp.conformance.musts import check_label
from aiotcp.core.segment import parse_flags

Any_ = Literal["*"]
STAR: Any_ = "*"
"""Wildcard value on ``>`` lines."""
Link = Literal["link"]
LINK: Link = "link"
"""``mss link``: the link's MSS for the run's address family (``runner.link_mss``)."""

Family = Literal[4, 6]
FAMILIES: tuple[Family, ...] = (4, 6)
"""IPv4 and IPv6: every script runs over both unless it says ``ipv4-only``/``ipv6-only``."""

DEFAULT_PEER_ISN = 0xFFFFFF00
"""The peer's ISN: 256 below 2**32, so every scenario's sequence numbers wrap."""

ACTIONS = frozenset(
    {"listen", "accept", "connect", "write", "read", "shutdown", "close", "abort", "setopt", "wait"}
)
BLOCKING_ACTIONS = frozenset({"accept", "connect", "read"})
"""Actions that may wait on the network: the timeline goes on while they block."""

ERRNOS = frozenset(
    {"ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ECONNABORTED", "ENOTCONN", "EADDRINUSE"}
)


class ScriptError(ValueError):
    """A script that does not parse; the message names the file and line."""


@dataclass(frozen=True)
class Timing:
    """When a line happens: ``+t`` (relative), ``t`` (absolute) or unspecified."""

    value: float | None = None
    relative: bool = True
    tolerance: float | None = None
    """Per-line override of the script's tolerance (``~tol``)."""

    @property
    def timed(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class OptionSpec:
    """One TCP option of a segment line.

    ``kind`` is ``mss``, ``wscale``, ``sackOK``, ``TS``, ``sack``, ``nop``, ``eol``,
    ``kind`` (generic, ``raw`` holds kind byte + body) or ``bytes`` (verbatim).
    """

    kind: str
    value: int | Any_ | Link | None = None
    ts_ecr: int | Any_ | None = None
    blocks: tuple[tuple[int, int], ...] = ()
    raw: bytes = b""


@dataclass(frozen=True)
class SegmentSpec:
    """A ``<`` or ``>`` line's segment, sequence numbers still relative."""

    flags: int
    optional_flags: int = 0
    seq: int | Any_ | None = None
    end: int | Any_ | None = None
    length: int | Any_ | None = None
    ack: int | Any_ | None = None
    win: int | Any_ | None = None
    urg: int | Any_ | None = None
    options: tuple[OptionSpec, ...] | None = ()
    """``None``: ``<...>`` (not checked); ``()``: no options."""
    options_open: bool = False
    """The list ended with ``...``: options not listed may be present."""
    payload: bytes | None = None
    """A literal payload; ``None``: the stream pattern."""
    from_edge: bool = False
    """``seq`` is relative to the right edge of the window the endpoint under test
    advertised last (``edge-1:edge(1)`` is the last byte it can accept)."""
    bad_checksum: bool = False
    reserved: int = 0
    """The four reserved bits of the data-offset byte (RFC 9293 §3.1)."""


@dataclass(frozen=True)
class Action:
    """An application call on the endpoint under test."""

    verb: str
    count: int | None = None
    """``write N`` / ``read N`` / ``listen BACKLOG``."""
    text: bytes | None = None
    """``write "text"`` / ``read "text"``."""
    eof: bool = False
    """``read eof``: the next read returns end of stream."""
    option: tuple[str, str] | None = None
    """``setopt name=value``."""
    error: str | None = None
    """``=> ERRNO``: the call must fail with this errno name."""

    @property
    def blocking(self) -> bool:
        return self.verb in BLOCKING_ACTIONS


@dataclass(frozen=True)
class Event:
    """One timeline line: exactly one of ``inject``, ``expect``, ``action``, ``silence``."""

    lineno: int
    text: str
    timing: Timing
    inject: SegmentSpec | None = None
    expect: SegmentSpec | None = None
    action: Action | None = None
    silence: float | None = None


@dataclass
class Script:
    """A parsed scenario: its header and its events."""

    name: str
    events: list[Event]
    oracle_linux: bool = True
    """True: Linux must pass (``oracle: linux``); False: Linux must fail."""
    differs_reason: str = ""
    differs_line: int | None = None
    """The line marked ``!``: where Linux must fail (``expect-linux: differs``)."""
    linux_sysctls: dict[str, str] = field(default_factory=dict)
    aiotcp_options: dict[str, Any] = field(default_factory=dict)
    tolerance: float = 0.1
    peer_isn: int = DEFAULT_PEER_ISN
    timeout: float = 20.0
    path: Path | None = None
    covers: tuple[str, ...] = ()
    """Requirement labels from ``covers:`` lines (``MUST-7``, ``RFC5961-3``), in order:
    what the script checks, for the MUST table of ``docs/conformance.md``."""
    families: tuple[Family, ...] = FAMILIES
    """The address families it runs over: both, unless ``ipv4-only``/``ipv6-only``."""
    family_reason: str = ""
    """Why it runs over one family only (the ``ipv4-only:`` / ``ipv6-only:`` text)."""

    @property
    def listens(self) -> bool:
        """Passive open (the peer connects to a listener) or active (the app connects)."""
        return any(e.action is not None and e.action.verb == "listen" for e in self.events)


# ----------------------------------------------------------------------------- parsing

_TIME = re.compile(r"^(?P<time>\+?\d+(?:\.\d*)?|\*)\s+(?P<rest>.*)$")
_TOL = re.compile(r"\s+~(?P<tol>\d+(?:\.\d*)?)\s*$")
_SEQ = re.compile(
    r"^(?P<edge>edge)?(?P<seq>[-+]?\d+|\*|(?<=edge)):(?:edge)?(?P<end>[-+]?\d+|\*|(?<=edge))"
    r"\((?P<len>\d+|\*)\)$"
)
_FLAGS = re.compile(r"^(?:[SFRPUEW.](?:\?)?)+$")


def _number(token: str, what: str, *, star: bool) -> int | Any_:
    if token == "*":
        if not star:
            raise ValueError(f"'*' is only allowed on '>' lines ({what})")
        return STAR
    try:
        return int(token, 0)
    except ValueError:
        raise ValueError(f"bad {what}: {token!r}") from None


def _unquote(token: str) -> bytes:
    """A double-quoted string with Python escapes (``"a\\r\\n"``) as bytes."""
    body = token[1:-1]
    return body.encode("latin-1").decode("unicode_escape").encode("latin-1")


def _parse_flags(token: str) -> tuple[int, int]:
    if not _FLAGS.match(token):
        raise ValueError(f"bad flags {token!r} (tcpdump letters: S F R P U E W and '.')")
    required = optional = 0
    i = 0
    while i < len(token):
        bit = parse_flags(token[i])
        if i + 1 < len(token) and token[i + 1] == "?":
            optional |= bit
            i += 2
        else:
            required |= bit
            i += 1
    return required, optional


def _parse_option(text: str, *, star: bool) -> OptionSpec:
    words = text.split()
    if not words:
        raise ValueError("empty option")
    head = words[0]
    if head in ("nop", "eol", "sackOK") and len(words) == 1:
        return OptionSpec(head)
    if head == "mss" and words[1:] == [LINK]:
        return OptionSpec(head, LINK)
    if head in ("mss", "wscale") and len(words) == 2:
        return OptionSpec(head, _number(words[1], head, star=star))
    if head == "TS" and len(words) == 5 and words[1] == "val" and words[3] == "ecr":
        # ``ecr *`` on a ``<`` line echoes the last TS val the endpoint under test sent.
        return OptionSpec(
            "TS", _number(words[2], "TS val", star=star), _number(words[4], "TS ecr", star=True)
        )
    if head == "sack" and len(words) >= 2:
        blocks = []
        for block in words[1:]:
            left, _, right = block.partition(":")
            lo, hi = _number(left, "sack", star=False), _number(right, "sack", star=False)
            assert isinstance(lo, int) and isinstance(hi, int)
            blocks.append((lo, hi))
        return OptionSpec("sack", blocks=tuple(blocks))
    if head == "kind" and len(words) in (2, 3):
        kind = int(words[1], 0)
        body = bytes.fromhex(words[2]) if len(words) == 3 else b""
        return OptionSpec("kind", raw=bytes((kind, len(body) + 2)) + body)
    if head == "bytes" and len(words) == 2:
        return OptionSpec("bytes", raw=bytes.fromhex(words[1]))
    raise ValueError(f"unknown option {text!r}")


def parse_segment(text: str, *, outbound: bool) -> SegmentSpec:
    """Parse the part of a ``<``/``>`` line after the arrow.

    ``outbound`` (a ``>`` line) allows ``*`` wildcards and optional flags.
    """
    options: tuple[OptionSpec, ...] | None = ()
    opts_open = False
    start, stop = text.find("<"), text.rfind(">")
    if start >= 0:
        if stop < start:
            raise ValueError("unterminated option list '<...'")
        inner = text[start + 1 : stop].strip()
        text = text[:start] + " " + text[stop + 1 :]
        if inner == "...":
            options = None
        else:
            parts = [p.strip() for p in inner.split(",") if p.strip()]
            if parts and parts[-1] == "...":
                if not outbound:
                    raise ValueError("'...' in an option list is only allowed on '>' lines")
                opts_open, parts = True, parts[:-1]
            options = tuple(_parse_option(p, star=outbound) for p in parts)
    tokens = shlex.split(text, posix=False)
    if not tokens:
        raise ValueError("missing flags")
    flags, optional = _parse_flags(tokens[0])
    if optional and not outbound:
        raise ValueError("optional flags ('?') are only allowed on '>' lines")
    fields: dict[str, object] = {}
    i = 1
    while i < len(tokens):
        tok = tokens[i]
        if (m := _SEQ.match(tok)) is not None:
            edge = m["edge"] is not None
            if edge != tok.partition(":")[2].startswith("edge"):
                raise ValueError(f"{tok}: both ends relative to 'edge', or neither")
            if edge and outbound:
                raise ValueError("'edge' is only for injected ('<') segments")
            seq = _number(m["seq"] or "0", "seq", star=outbound)
            end = _number(m["end"] or "0", "end", star=outbound)
            fields["from_edge"] = edge
            length = _number(m["len"], "length", star=outbound)
            ints = isinstance(seq, int) and isinstance(end, int) and isinstance(length, int)
            if ints and end - seq != length:  # type: ignore[operator]
                raise ValueError(f"{tok}: end - start is not the length")
            fields.update(seq=seq, end=end, length=length)
        elif tok in ("ack", "win", "urg", "reserved") and i + 1 < len(tokens):
            key = {"urg": "urg", "reserved": "reserved"}.get(tok, tok)
            fields[key] = _number(tokens[i + 1], tok, star=outbound and tok != "reserved")
            i += 1
        elif tok == "badcsum":
            fields["bad_checksum"] = True
        elif tok.startswith('"') and tok.endswith('"') and len(tok) >= 2:
            fields["payload"] = _unquote(tok)
        else:
            raise ValueError(f"unexpected {tok!r}")
        i += 1
    if (fields.get("bad_checksum") or "reserved" in fields) and outbound:
        raise ValueError("badcsum / reserved are only for injected ('<') segments")
    if not outbound and "seq" not in fields:
        raise ValueError("an injected segment needs SEQ:END(LEN)")
    if not outbound and flags & parse_flags(".") and "ack" not in fields:
        raise ValueError("an injected segment with ACK set needs 'ack N'")
    payload = fields.get("payload")
    declared = fields.get("length")
    if isinstance(payload, bytes) and isinstance(declared, int) and len(payload) != declared:
        raise ValueError(f"payload is {len(payload)} bytes, LEN says {declared}")
    return SegmentSpec(
        flags=flags,
        optional_flags=optional,
        options=options,
        options_open=opts_open,
        **fields,  # type: ignore[arg-type]
    )


def parse_action(text: str) -> Action:
    """Parse an application line (``write 10``, ``read eof``, ``connect => ECONNREFUSED``)."""
    error = None
    if "=>" in text:
        text, _, err = text.partition("=>")
        error = err.strip()
        if error != "*" and error not in ERRNOS:
            raise ValueError(f"unknown errno {error!r} (one of {', '.join(sorted(ERRNOS))})")
    words = shlex.split(text, posix=False)
    verb, args = words[0], words[1:]
    if verb not in ACTIONS:
        raise ValueError(f"unknown action {verb!r}")
    if verb in ("write", "read"):
        if len(args) != 1:
            raise ValueError(
                f'{verb} takes one argument: N or "text"' + (" or eof" * (verb == "read"))
            )
        arg = args[0]
        if arg.startswith('"') and arg.endswith('"') and len(arg) >= 2:
            return Action(verb, text=_unquote(arg), error=error)
        if verb == "read" and arg == "eof":
            return Action(verb, eof=True, error=error)
        return Action(verb, count=int(arg, 0), error=error)
    if verb == "listen":
        if len(args) > 1:
            raise ValueError("listen takes at most a backlog")
        return Action(verb, count=int(args[0]) if args else None, error=error)
    if verb == "setopt":
        if len(args) != 1 or "=" not in args[0]:
            raise ValueError("setopt takes name=value")
        name, _, value = args[0].partition("=")
        return Action(verb, option=(name, value), error=error)
    if args:
        raise ValueError(f"{verb} takes no arguments")
    return Action(verb, error=error)


def parse_value(text: str) -> object:
    """A header or ``setopt`` value: bool, int, float or string."""
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    with contextlib.suppress(ValueError):
        return int(text, 0)
    with contextlib.suppress(ValueError):
        return float(text)
    return text.strip()


def _parse_header(script: Script, key: str, value: str) -> None:
    if key == "oracle":
        if value != "linux":
            raise ValueError("oracle must be 'linux' (or use 'expect-linux: differs <reason>')")
        script.oracle_linux = True
    elif key == "expect-linux":
        kind, _, reason = value.partition(" ")
        if kind != "differs" or not reason.strip():
            raise ValueError("expect-linux: differs <reason>")
        script.oracle_linux, script.differs_reason = False, reason.strip()
    elif key == "linux-sysctl":
        name, _, val = value.partition("=")
        if not name.startswith("net.") or not val:
            raise ValueError("linux-sysctl: net.<key>=<value> (per-namespace keys only)")
        script.linux_sysctls[name.strip()] = val.strip()
    elif key == "aiotcp":
        for item in value.split(","):
            name, _, val = item.partition("=")
            if not val:
                raise ValueError(f"aiotcp: name=value[, ...], got {item!r}")
            script.aiotcp_options[name.strip()] = parse_value(val)
    elif key == "tolerance":
        script.tolerance = float(value)
    elif key == "peer-isn":
        script.peer_isn = int(value, 0) & 0xFFFFFFFF
    elif key == "timeout":
        script.timeout = float(value)
    elif key in ("ipv4-only", "ipv6-only"):
        if not value:
            raise ValueError(f"{key}: <reason> (why the script cannot run over both families)")
        if script.families != FAMILIES:
            raise ValueError("ipv4-only and ipv6-only: one of them, once")
        script.families = (4,) if key == "ipv4-only" else (6,)
        script.family_reason = value
    elif key == "covers":
        labels = [check_label(item) for item in re.split(r"[,\s]+", value) if item]
        if not labels:
            raise ValueError("covers: LABEL[, LABEL ...] (MUST-n, RFCnnnn, RFCnnnn-section)")
        for label in labels:
            if label in script.covers:
                raise ValueError(f"{label} is listed twice in covers")
            script.covers += (label,)
    else:
        raise ValueError(f"unknown header {key!r}")


def _parse_timing(line: str) -> tuple[Timing, str]:
    tol = None
    if (m := _TOL.search(line)) is not None:
        tol, line = float(m["tol"]), line[: m.start()]
    m = _TIME.match(line)
    if m is None or m["time"] == "*":
        rest = m["rest"] if m is not None else line
        return Timing(tolerance=tol), rest
    t = m["time"]
    return Timing(float(t.lstrip("+")), t.startswith("+"), tol), m["rest"]


_HEADER = re.compile(r"^(?P<key>[a-z][a-z0-9-]*):\s*(?P<value>.*)$")


def parse_script(text: str, name: str = "<script>", path: Path | None = None) -> Script:
    """Parse a whole script; raises ``ScriptError`` naming the line on any mistake."""
    script = Script(name=name, events=[], path=path)
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if not line:
            continue
        try:
            if not script.events and (m := _HEADER.match(line)) is not None:
                _parse_header(script, m["key"], m["value"].strip())
                continue
            if line.startswith("!"):
                if script.differs_line is not None:
                    raise ValueError("only one line can be marked '!'")
                script.differs_line, line = lineno, line[1:].strip()
            timing, rest = _parse_timing(line)
            if rest.startswith("<"):
                event = Event(lineno, line, timing, inject=parse_segment(rest[1:], outbound=False))
            elif rest.startswith(">"):
                event = Event(lineno, line, timing, expect=parse_segment(rest[1:], outbound=True))
            elif rest.startswith("silence"):
                words = rest.split()
                if len(words) != 2:
                    raise ValueError("silence takes a duration in seconds")
                event = Event(lineno, line, timing, silence=float(words[1]))
            else:
                event = Event(lineno, line, timing, action=parse_action(rest))
        except (ValueError, IndexError) as exc:
            raise ScriptError(f"{path or name}:{lineno}: {exc}\n    {raw.strip()}") from None
        script.events.append(event)
    if not script.events:
        raise ScriptError(f"{path or name}: no events")
    if script.oracle_linux and script.differs_line is not None:
        raise ScriptError(f"{path or name}:{script.differs_line}: '!' without expect-linux")
    if not script.oracle_linux and script.differs_line is None:
        raise ScriptError(f"{path or name}: expect-linux: differs needs a line marked '!'")
    verbs = {e.action.verb for e in script.events if e.action is not None}
    if "listen" in verbs and "connect" in verbs:
        raise ScriptError(f"{path or name}: a script either listens or connects, not both")
    return script


def _strip_comment(line: str) -> str:
    """Strip a ``#`` comment that is outside double quotes."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return line[:i].strip()
    return line.strip()


def load_script(path: Path, root: Path | None = None) -> Script:
    """Read and parse a ``.pkt`` file; its name is the path below ``root`` (``open/x.pkt``)."""
    name = str(path.resolve().relative_to(root.resolve())) if root is not None else path.name
    return parse_script(path.read_text(), name=name, path=path)


def find_scripts(root: Path) -> list[Path]:
    """Every ``.pkt`` below ``root`` (or ``root`` itself), sorted for stable test ids."""
    if root.is_file():
        return [root]
    return sorted(root.rglob("*.pkt"))
