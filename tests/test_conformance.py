"""The differential conformance suite: every ``aiotcp/conformance/scripts/**/*.pkt`` on
Linux and aiotcp, over IPv4 and over IPv6.

Each (script, stack, family) triple is one test (a script that holds for one family
only, ``ipv4-only``/``ipv6-only``, has no test for the other).  The runs themselves
happen once, in parallel worker processes (each in its own namespace pair), in a
module fixture that runs exactly the triples pytest selected; each test then asserts
its own result.  A script
that passes on Linux but fails on aiotcp is an aiotcp bug: such known bugs are listed
in ``aiotcp.conformance.known`` and marked ``xfail(strict=True)``, so fixing one
turns the suite red until the entry goes.

The second half unit-tests the script parser (no root needed).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from aiotcp.conformance.__main__ import DEFAULT_ROOT, markdown, rfc_references
from aiotcp.conformance.known import AIOTCP_KNOWN_BUGS
from aiotcp.conformance.matrix import (
    GENERATED_DIRS,
    generate,
    generate_paws,
    generate_reorderings,
    generate_sack_reorderings,
)
from aiotcp.conformance.report import ByScript
from aiotcp.conformance.runner import (
    STACKS,
    ActionTimeout,
    Job,
    RunResult,
    StackKind,
    errno_name,
    link_mss,
    pattern_bytes,
    run_many,
    run_script,
)
from aiotcp.conformance.script import (
    FAMILIES,
    LINK,
    STAR,
    Family,
    ScriptError,
    find_scripts,
    load_script,
    parse_action,
    parse_script,
    parse_segment,
)
from aiotcp.core.segment import ACK, FIN, PSH, RST, SYN
from aiotcp.io.rawsock import RawSocket
from aiotcp.testing.netns import is_root, require_root

ROOT = DEFAULT_ROOT
SCRIPTS = find_scripts(ROOT)
WORKERS = int(os.environ.get("AIOTCP_CONFORMANCE_JOBS", "4"))
ONE_FAMILY = {"mss/missing-mss-means-536.pkt": 4, "mss/missing-mss-means-1220.pkt": 6}
"""The only scripts that run over one address family: the default send MSS is the
one MUST whose value the RFC sets per family, so it is checked by a pair."""


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _params() -> list[object]:
    params: list[object] = []
    for path in SCRIPTS:
        name = _name(path)
        families = load_script(path, ROOT).families
        for stack in STACKS:
            for family in families:
                marks = []
                if stack == "aiotcp" and name in AIOTCP_KNOWN_BUGS:
                    marks.append(pytest.mark.xfail(strict=True, reason=AIOTCP_KNOWN_BUGS[name]))
                ident = f"{name}-{stack}-ipv{family}"
                params.append(pytest.param(name, stack, family, marks=marks, id=ident))
    return params


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest) -> dict[tuple[str, str, int], RunResult]:
    """Run every selected (script, stack, family) once, in parallel; keyed by the triple.

    Under pytest-xdist every worker sees all items but runs only some, so there each
    test runs its own script instead (xdist is then the parallelism).
    """
    if not is_root() or "PYTEST_XDIST_WORKER" in os.environ:
        return {}
    wanted: list[Job] = []
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        ours = getattr(item, "module", None) is request.module
        if ours and callspec is not None and getattr(item, "originalname", "") == "test_script":
            params = callspec.params
            wanted.append((ROOT / params["name"], params["stack"], params["family"]))
    done = run_many(wanted, root=ROOT, workers=WORKERS)
    return {(r.script, r.stack, r.family): r for r in done}


@pytest.mark.root
@pytest.mark.timeout(600)
@pytest.mark.parametrize(("name", "stack", "family"), _params())
def test_script(
    name: str,
    stack: StackKind,
    family: Family,
    results: dict[tuple[str, str, int], RunResult],
) -> None:
    """Linux passes (or fails, where the script declares a difference); aiotcp passes."""
    require_root()
    result = results.get((name, stack, family))
    if result is None:
        result = run_script(load_script(ROOT / name, ROOT), stack, family)
    if not result.ok:
        where = f"{name} on {stack} over IPv{family}"
        pytest.fail(f"{where}: {result.verdict}\n{result.detail}", pytrace=False)


# ------------------------------------------------------------------ parser (no root)


def test_every_script_parses() -> None:
    assert len(SCRIPTS) >= 120
    for path in SCRIPTS:
        script = load_script(path, ROOT)
        assert script.events, path
        assert script.oracle_linux or script.differs_reason, path


def test_scripts_are_family_neutral() -> None:
    """Every script runs over both families but the listed pair, and none writes the
    link's MSS of either family as a number (``mss link`` says it for both)."""
    one_family = {}
    for path in SCRIPTS:
        script = load_script(path, ROOT)
        if script.families != FAMILIES:
            one_family[_name(path)] = script.families[0]
            assert script.family_reason, path
        for event in script.events:
            seg = event.inject or event.expect
            for opt in (seg.options or ()) if seg is not None else ():
                if opt.kind == "mss":
                    assert opt.value not in (link_mss(4), link_mss(6)), (path, event.text)
    assert one_family == ONE_FAMILY


def test_link_mss_and_one_family_headers() -> None:
    for outbound in (True, False):
        seg = parse_segment("S. 0:0(0) ack 1 <mss link,nop,wscale 7>", outbound=outbound)
        assert seg.options is not None and seg.options[0].value == LINK
    assert (link_mss(4), link_mss(6)) == (1460, 1440)
    assert parse_script("listen\n").families == (4, 6)
    only4 = parse_script("ipv4-only: 536 is IPv4's\nlisten\n")
    assert only4.families == (4,) and only4.family_reason == "536 is IPv4's"
    assert parse_script("ipv6-only: 1220\nlisten\n").families == (6,)
    with pytest.raises(ScriptError, match="reason"):
        parse_script("ipv6-only:\nlisten\n")
    with pytest.raises(ScriptError, match="one of them"):
        parse_script("ipv4-only: a\nipv6-only: b\nlisten\n")
    with pytest.raises(ScriptError, match="bad wscale"):  # only the MSS has a link value
        parse_script("listen\n< S 0:0(0) <wscale link>\n")


def test_segment_line_relative_numbers_and_options() -> None:
    seg = parse_segment(
        " S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 5 ecr 0,nop,wscale 7>", outbound=False
    )
    assert (seg.flags, seg.seq, seg.end, seg.length, seg.ack, seg.win) == (
        SYN | ACK,
        0,
        0,
        0,
        1,
        65535,
    )
    assert seg.options is not None
    assert [o.kind for o in seg.options] == ["mss", "sackOK", "TS", "nop", "wscale"]
    assert seg.options[2].value == 5 and seg.options[2].ts_ecr == 0


def test_outbound_wildcards_optional_flags_and_open_option_lists() -> None:
    seg = parse_segment("P?. *:*(*) ack * <mss *,...>", outbound=True)
    assert (seg.flags, seg.optional_flags) == (ACK, PSH)
    assert seg.seq == STAR and seg.ack == STAR and seg.options_open
    assert parse_segment("R 5:5(0) <...>", outbound=True).options is None
    assert parse_segment("F. 1:1(0) ack 1", outbound=True).options == ()
    assert parse_segment("F. 1:1(0) ack 1", outbound=True).flags == FIN | ACK


def test_injected_segments_are_concrete() -> None:
    for bad in ("S *:0(0)", "P?. 1:2(1) ack 1", ". 1:1(0)", "S 0:5(3)", 'P. 1:3(2) ack 1 "abc"'):
        with pytest.raises(ValueError):
            parse_segment(bad, outbound=False)
    raw = parse_segment("S 0:0(0) <kind 30 0000,bytes 0801> badcsum reserved 0xe", outbound=False)
    assert raw.bad_checksum and raw.reserved == 0xE
    assert raw.options is not None and raw.options[0].raw == bytes((30, 4, 0, 0))
    assert parse_segment('P. 1:4(3) ack 1 "a\\nb"', outbound=False).payload == b"a\nb"


def test_actions() -> None:
    assert parse_action("write 10").count == 10
    assert parse_action('write "hi"').text == b"hi"
    assert parse_action("read eof").eof
    assert parse_action("connect => ECONNREFUSED").error == "ECONNREFUSED"
    assert parse_action("connect => *").error == "*"
    assert parse_action("setopt nodelay=1").option == ("nodelay", "1")
    assert parse_action("listen 5").count == 5
    assert parse_action("read 3").blocking and not parse_action("close").blocking
    for bad in ("jump", "write", "connect => EWHATEVER", "close now"):
        with pytest.raises(ValueError):
            parse_action(bad)


def test_script_header_timing_and_errors() -> None:
    script = parse_script(
        "# comment\n"
        "expect-linux: differs because\n"
        "linux-sysctl: net.ipv4.tcp_rfc1337=1\n"
        "aiotcp: rfc1337=false, msl=0.5\n"
        "tolerance: 0.2\n"
        "listen\n"
        "< S 0:0(0) win 100 <mss 1000>   # a SYN\n"
        "+0.5 > S. 0:0(0) ack 1 <...> ~0.3\n"
        "1.5 close\n"
        "! silence 0.1\n"
    )
    assert not script.oracle_linux and script.differs_reason == "because"
    assert script.linux_sysctls == {"net.ipv4.tcp_rfc1337": "1"}
    assert script.aiotcp_options == {"rfc1337": False, "msl": 0.5}
    assert script.tolerance == 0.2 and script.listens
    timed = script.events[2].timing
    assert (timed.value, timed.relative, timed.tolerance) == (0.5, True, 0.3)
    assert (script.events[3].timing.value, script.events[3].timing.relative) == (1.5, False)
    assert script.events[4].silence == 0.1
    with pytest.raises(ScriptError, match=":2:"):
        parse_script("listen\n< X 0:0(0)\n")
    with pytest.raises(ScriptError, match="either listens or connects"):
        parse_script("listen\nconnect\n")


def test_difference_marker() -> None:
    script = parse_script("expect-linux: differs why\nlisten\n! silence 0.1\n")
    assert script.differs_line == 3 and script.events[1].silence == 0.1
    with pytest.raises(ScriptError, match="needs a line marked"):
        parse_script("expect-linux: differs why\nlisten\nsilence 0.1\n")
    with pytest.raises(ScriptError, match="without expect-linux"):
        parse_script("listen\n! silence 0.1\n")
    with pytest.raises(ScriptError, match="only one line"):
        parse_script("expect-linux: differs why\nlisten\n! silence 0.1\n! close\n")


def test_covers_header_names_known_requirements() -> None:
    """``covers:`` lines accumulate; an unknown, malformed or repeated label fails the
    parse (a typo must not silently drop a script out of the MUST table)."""
    script = parse_script("covers: MUST-7, RFC5961-3\ncovers: RFC9293-3.10.7.4\nlisten\n")
    assert script.covers == ("MUST-7", "RFC5961-3", "RFC9293-3.10.7.4")
    assert parse_script("covers: MUST-1 MUST-69\nlisten\n").covers == ("MUST-1", "MUST-69")
    assert parse_script("listen\n").covers == ()
    for bad, message in (
        ("MUST-70", "unknown requirement"),
        ("MUST-0", "bad requirement label"),
        ("RFC 5961", "bad requirement label"),
        ("RFC5961-9", "unknown requirement"),
        ("must-7", "bad requirement label"),
        ("MUST-7, MUST-7", "listed twice"),
        ("", "covers: LABEL"),
    ):
        with pytest.raises(ScriptError, match=message):
            parse_script(f"covers: {bad}\nlisten\n")
    with pytest.raises(ScriptError, match="unknown action"):
        parse_script("listen\ncovers: MUST-7\n")  # headers come before the first event


def test_window_edge_positions() -> None:
    seg = parse_segment("R edge:edge(0) win 0", outbound=False)
    assert seg.from_edge and (seg.seq, seg.end, seg.length) == (0, 0, 0)
    last = parse_segment("P. edge-1:edge(1) ack 1", outbound=False)
    assert last.from_edge and (last.seq, last.end) == (-1, 0)
    beyond = parse_segment("P. edge:edge+2(2) ack 1", outbound=False)
    assert (beyond.seq, beyond.end) == (0, 2)
    assert not parse_segment("P. 1:2(1) ack 1", outbound=False).from_edge
    for bad in ("R edge:5(0)", "R 5:edge(0)"):
        with pytest.raises(ValueError, match="both ends"):
            parse_segment(bad, outbound=False)
    with pytest.raises(ValueError, match="edge"):
        parse_segment("R edge:edge(0)", outbound=True)


def test_generated_scripts_are_current() -> None:
    """The generated folders are exactly what the generator writes (rerun
    ``python -m aiotcp.conformance.matrix`` after changing it)."""
    expected = generate() | generate_paws() | generate_reorderings() | generate_sack_reorderings()
    on_disk = {
        _name(p): p.read_text() for d in GENERATED_DIRS for p in sorted((ROOT / d).rglob("*.pkt"))
    }
    assert sorted(on_disk) == sorted(expected)
    for name, text in expected.items():
        assert on_disk[name] == text, name


def test_stream_pattern_is_offset_indexed() -> None:
    assert pattern_bytes(0, 3) + pattern_bytes(3, 4) == pattern_bytes(0, 7)
    assert RST == 0x04  # flags come from the codec, not redefined here


def test_errno_names_match_the_kernel() -> None:
    assert errno_name(ConnectionRefusedError()) == "ECONNREFUSED"
    assert errno_name(ConnectionResetError(104, "reset")) == "ECONNRESET"
    assert errno_name(TimeoutError()) == "ETIMEDOUT"
    assert errno_name(BrokenPipeError()) == "EPIPE"
    assert errno_name(ActionTimeout()).startswith("no result")


# ----------------------------------------------------------- the runner itself (root)

_SELF_TEST = """oracle: linux
listen
< S 0:0(0) win 65535 <mss link>
> S. 0:0(0) ack 1 <mss {mss}>
< . 1:1(0) ack 1 win 65535
accept
< P. 1:4(3) ack 1 win 65535
> . 1:1(0) ack 4
read {read}
"""


@pytest.mark.root
@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("stack", STACKS)
def test_runner_fails_a_wrong_script_with_a_diff(stack: StackKind, family: Family) -> None:
    """The runner must not pass vacuously: a wrong option value and a wrong read
    fail, naming the line and the field; over IPv6 the link's MSS is 1440."""
    require_root()
    wrong = run_script(parse_script(_SELF_TEST.format(mss=999, read=3), "mss"), stack, family)
    assert not wrong.passed and not wrong.ok and wrong.family == family
    assert "line 4:" in wrong.detail
    assert f"mss: expected 999, got {link_mss(family)}" in wrong.detail
    assert ("fd00:198:18:" in wrong.detail) == (family == 6)  # the transcript's addresses
    script = parse_script(_SELF_TEST.format(mss="link", read='"xyz"'), "r")
    wrong_read = run_script(script, stack, family)
    assert not wrong_read.passed
    assert "line 9:" in wrong_read.detail and "read: expected b'xyz'" in wrong_read.detail
    right = run_script(parse_script(_SELF_TEST.format(mss="link", read=3), "ok"), stack, family)
    assert right.passed and right.ok, right.detail


@pytest.mark.root
def test_a_run_leaves_no_raw_socket_behind() -> None:
    """The scripted peer's mailboxes once kept their raw socket alive (a value
    holding its ``WeakKeyDictionary`` key): every run leaked the socket's receive
    buffers, 9 GB over a conformance suite in one test worker."""
    require_root()
    gc.collect()
    before = sum(isinstance(o, RawSocket) for o in gc.get_objects())
    for stack in STACKS:
        result = run_script(parse_script(_SELF_TEST.format(mss="link", read=3), "ok"), stack, 4)
        assert result.passed, result.detail
    gc.collect()
    assert sum(isinstance(o, RawSocket) for o in gc.get_objects()) == before


def test_runner_refuses_a_family_the_script_excludes() -> None:
    only4 = parse_script("ipv4-only: why\n" + _SELF_TEST.format(mss="link", read=3), "x")
    with pytest.raises(ValueError, match="IPv4 only"):
        run_script(only4, "linux", 6)


def _differs(mss: int | str) -> str:
    """The self-test as a declared difference, Linux expected to fail at ``read``."""
    text = _SELF_TEST.format(mss=mss, read=3).replace("oracle: linux", "expect-linux: differs x")
    return text.replace("read 3", "! read 3")


@pytest.mark.root
@pytest.mark.parametrize("family", FAMILIES, ids=["ipv4", "ipv6"])
def test_declared_differences_are_held_to_their_line(family: Family) -> None:
    """A difference Linux no longer shows, or a Linux failure elsewhere than the
    marked line, is not "differs as declared"."""
    require_root()
    stale = run_script(parse_script(_differs("link"), "stale"), "linux", family)
    assert stale.passed and not stale.ok and stale.verdict == "UNEXPECTED PASS"
    elsewhere = run_script(parse_script(_differs(999), "elsewhere"), "linux", family)
    assert not elsewhere.ok and elsewhere.verdict == "FAIL (line 4, not 9)"


def test_markdown_report_lists_differences_and_known_bugs(monkeypatch: pytest.MonkeyPatch) -> None:
    diff, bug = "open/syn-retransmit-linux-linear.pkt", "close/close-with-unread-data-sends-rst.pkt"
    # A sample entry: the real list is empty while aiotcp has no known bug.
    monkeypatch.setitem(AIOTCP_KNOWN_BUGS, bug, "aiotcp sends FIN, not RST (a sample)")
    rows: ByScript = {}
    for f in FAMILIES:
        for r in (
            RunResult(
                diff,
                "linux",
                False,
                False,
                reason="linear",
                failed_line=9,
                differs_line=9,
                family=f,
            ),
            RunResult(diff, "aiotcp", True, True, family=f),
            RunResult(bug, "linux", True, True, family=f),
            RunResult(bug, "aiotcp", False, True, family=f),
        ):
            rows.setdefault(r.script, {})[(r.stack, f)] = r
    text = markdown(rows, {n: ROOT / n for n in rows}, STACKS, 1.0)
    assert "| linux IPv4 pass | linux IPv6 pass | aiotcp IPv4 pass | aiotcp IPv6 pass |" in text
    assert "| open | 1 | 0 | 0 | 1 | 1 | 1 declared Linux differences |" in text
    assert "| close | 1 | 1 | 1 | 0 | 0 | 1 known aiotcp bugs |" in text
    assert "| IPv6 | 2 | 1 pass, 1 differ as declared | 1 pass, 1 known bugs |" in text
    assert f"| {diff} | linear |" in text
    assert f"| {bug} | aiotcp sends FIN, not RST" in text
    assert "| known bug |" in text and "&lt;" not in text.split("## Every script")[0]


def test_rfc_references_come_from_the_leading_comment() -> None:
    refs = rfc_references(ROOT / "rfc5961/rst-in-window-challenge-ack.pkt")
    assert refs == {"RFC 5961 §3.2", "RFC 9293 §3.10.7.4"}
