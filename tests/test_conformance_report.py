"""The RFC 9293 MUST table (issue 10): its data, its generator, and docs/conformance.md.

No root needed: the generator is fed made-up results, and the command line reads
them from a saved JSON file instead of running anything.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from aiotcp.conformance import musts
from aiotcp.conformance.__main__ import main
from aiotcp.conformance.known import AIOTCP_KNOWN_BUGS
from aiotcp.conformance.matrix import GENERATED_DIRS
from aiotcp.conformance.report import (
    ByScript,
    by_script_of,
    load_results,
    requirements_markdown,
    save_results,
)
from aiotcp.conformance.runner import STACKS, RunResult
from aiotcp.conformance.script import FAMILIES, find_scripts, load_script

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "aiotcp" / "conformance" / "scripts"
SUITE = {s.name: s for s in (load_script(p, ROOT) for p in find_scripts(ROOT))}
SAMPLE_BUG = "close/close-with-unread-data-sends-rst.pkt"


@pytest.fixture(autouse=True)
def a_known_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's known-bug rows are checked with a sample entry: the real list is
    empty while aiotcp has no known bug."""
    monkeypatch.setitem(AIOTCP_KNOWN_BUGS, SAMPLE_BUG, "aiotcp sends FIN, not RST (a sample)")


UNTESTABLE: dict[int, str] = {}
"""Implemented (or partly) MUSTs that neither a script nor another test checks, and why
(none left: each entry says why, when one comes back)."""


def _functions(path: Path) -> set[str]:
    """``name`` and ``Class::name`` of every function defined in a test module."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{item.name}")
    return names


def test_every_must_of_rfc9293_is_listed_once_in_order() -> None:
    """RFC 9293 numbers its MUSTs 1 ... 69 without gaps; each has a status."""
    numbers = [n for n, _, _ in musts.RFC9293_MUSTS]
    assert numbers == list(range(1, 70))
    assert sorted(musts.MUST_STATUS) == numbers
    for n, section, text in musts.RFC9293_MUSTS:
        assert re.fullmatch(r"3(\.\d+)+", section), n
        assert text and len(text) <= 80, n
    for status in musts.MUST_STATUS.values():
        assert status.implemented in ("yes", "partly", "no", "n.a.")
        assert status.note or status.implemented == "yes"  # anything less says why


def test_every_extension_rfc_the_issue_names_has_rows() -> None:
    rows = {int(r.label[3:].split("-")[0]) for r in musts.EXTENSIONS}
    assert set(musts.EXTENSION_RFCS) <= rows
    assert all(r.label.startswith("RFC9293-") for r in musts.RFC9293_SECTIONS)


def test_every_cited_test_exists() -> None:
    """Each ``path::function`` in musts.py names a test function in a test file."""
    for label, req in musts.REQUIREMENTS.items():
        for test in req.status.tests:
            path, _, name = test.partition("::")
            file = REPO / path
            assert file.is_file() and file.name.startswith("test_"), f"{label}: {test}"
            assert name.startswith("test_") or "::test_" in name, f"{label}: {test}"
            assert name in _functions(file), f"{label}: no {name} in {path}"
            assert path.startswith("tests/")


def test_scripts_cover_only_known_requirements_and_exist() -> None:
    """Every label a script covers has a row, and every covering script is a file."""
    for name, script in SUITE.items():
        assert (ROOT / name).is_file()
        for label in script.covers:
            assert label in musts.REQUIREMENTS, (name, label)
    covered = {label for s in SUITE.values() for label in s.covers}
    assert {"MUST-3", "MUST-7", "MUST-10", "RFC5961-3", "RFC9293-3.10.7.4"} <= covered


def test_implemented_musts_are_tested_somewhere() -> None:
    """A MUST aiotcp (partly) implements is checked by a script or another test,
    except the few ``UNTESTABLE`` ones."""
    covered = {label for s in SUITE.values() for label in s.covers}
    untested = {
        n
        for n, status in musts.MUST_STATUS.items()
        if status.implemented in ("yes", "partly")
        and not status.tests
        and f"MUST-{n}" not in covered
    }
    assert untested == set(UNTESTABLE)


PAIR = ("mss/missing-mss-means-536.pkt", "mss/missing-mss-means-1220.pkt")
"""MUST-15's scripts: one per family."""


def _fake_results() -> ByScript:
    """Results over both families for a few scripts: passes, a declared difference, a
    known bug, and MUST-15's pair (each over its one family)."""
    differs = "options/illegal-option-length.pkt"
    bug = next(iter(AIOTCP_KNOWN_BUGS))
    reason = SUITE[differs].differs_reason
    line = SUITE[differs].differs_line
    results = []
    for f in FAMILIES:
        for name in ("validate/bad-checksum-data-dropped.pkt", "open/bad-checksum-syn-ignored.pkt"):
            results += [RunResult(name, s, True, True, seconds=0.1, family=f) for s in STACKS]
        results += [
            RunResult(differs, "linux", False, False, "", 0.1, reason, line, line, f),
            RunResult(differs, "aiotcp", True, True, reason=reason, differs_line=line, family=f),
            RunResult(bug, "linux", True, True, family=f),
            RunResult(bug, "aiotcp", False, True, "no RST", failed_line=9, family=f),
        ]
    for name, f in zip(PAIR, FAMILIES, strict=True):
        results += [RunResult(name, s, True, True, family=f) for s in STACKS]
    return by_script_of(results)


def _row(text: str, label: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {label} "))
    return [c.strip() for c in line.strip("|").split(" | ")]


def test_generator_writes_every_must_with_results_per_stack() -> None:
    text = requirements_markdown(_fake_results(), SUITE, STACKS, 12.0, "6.1-test")
    assert "on linux and aiotcp over IPv4 and IPv6 (Linux 6.1-test, 12 s wall clock)" in text
    # Each family's totals (the pair counts once for each), then the folders per run.
    assert "| IPv4 | 5 | 4 pass, 1 differ as declared | 4 pass, 1 known bugs |" in text
    assert "| IPv6 | 5 | 4 pass, 1 differ as declared | 4 pass, 1 known bugs |" in text
    assert "| mss | 2 | 1 | 1 | 1 | 1 | 1 IPv4 only, 1 IPv6 only |" in text
    # MUST-15's pair: each script counted over its own family only, so both agree.
    assert _row(text, "MUST-15 (§3.7.1)")[4:] == ["1/1 pass"] * 2
    for n, section, _ in musts.RFC9293_MUSTS:
        assert _row(text, f"MUST-{n} (§{section})")[2].startswith(musts.MUST_STATUS[n].implemented)
    # MUST-3: three scripts cover it, two ran and passed on both stacks.
    must3 = _row(text, "MUST-3 (§3.1)")
    assert "`validate/bad-checksum-data-dropped`" in must3[3]
    assert "`io/test_packet_parser.py::test_bad_checksum_is_rejected`" in must3[3]
    assert must3[4:] == ["2/2 pass (1 not run)", "2/2 pass (1 not run)"]
    # MUST-7: Linux differs as the script declares.
    assert _row(text, "MUST-7 (§3.1)")[4:] == ["0/1 pass (1 differs)", "1/1 pass"]
    # MUST-8: only tests outside the scripts; MUST-51: nothing, not implemented.
    assert _row(text, "MUST-8 (§3.4.1)")[4:] == ["—", "—"]
    assert _row(text, "MUST-51 (§3.9.2.1)")[2:] == [
        "no: " + musts.MUST_STATUS[51].note,
        "—",
        "—",
        "—",
    ]
    # The known bug shows in its requirement's row and in the differences.
    assert "1 known bug" in _row(text, "RFC 9293 §3.10.4")[5]
    for rfc in musts.EXTENSION_RFCS:
        assert f"| RFC {rfc}" in text
    differences = text.split("## Where aiotcp and Linux differ")[1]
    assert (
        "`options/illegal-option-length` | "
        + SUITE["options/illegal-option-length.pkt"].differs_reason.replace("|", "\\|")
        + " | 1/1 as declared |"
        in differences
    )
    assert "`matrix/established/rst-beyond`" in differences  # declared, even if not run
    assert f"`{next(iter(AIOTCP_KNOWN_BUGS)).removesuffix('.pkt')}`" in differences
    assert "`timewait/rst-kills-without-rfc1337` | default | `rfc1337=False`" in differences
    assert "None: every result is what its script declares." in differences
    one_family = differences.split("### One address family only")[1]
    assert "| `mss/missing-mss-means-536` | IPv4 | the default send MSS is 536" in one_family
    assert "| `mss/missing-mss-means-1220` | IPv6 | the default send MSS is 1220" in one_family
    assert "MUST-51" in text.split("## Not (fully) implemented")[1]


def test_generator_reports_unexpected_results() -> None:
    """A failure over one family shows that family's count apart, and names it."""
    results = _fake_results()
    name = "open/bad-checksum-syn-ignored.pkt"
    results[name][("aiotcp", 6)] = RunResult(name, "aiotcp", False, True, "x", 0, "", 5, None, 6)
    text = requirements_markdown(results, SUITE, STACKS, 1.0)
    assert _row(text, "MUST-3 (§3.1)")[4:] == [
        "2/2 pass (1 not run)",
        "IPv4: 2/2 pass (1 not run)<br>IPv6: 1/2 pass (1 FAILED, 1 not run)",
    ]
    assert f"| `{name}` | aiotcp | IPv6 | FAIL |" in text
    assert (
        "| IPv6 | 5 | 4 pass, 1 differ as declared | 3 pass, 1 known bugs, 1 UNEXPECTED |" in text
    )
    bug = next(iter(AIOTCP_KNOWN_BUGS))
    results[bug][("aiotcp", 4)] = RunResult(bug, "aiotcp", True, True)
    text = requirements_markdown(results, SUITE, STACKS, 1.0)
    assert f"| `{bug}` | aiotcp | IPv4 | FIXED (unlist it) |" in text  # the entry must go


def test_one_family_run_reports_that_family() -> None:
    """``--family 6``: the document says so, and IPv4-only scripts are not counted."""
    six = {
        name: {run: r for run, r in row.items() if run[1] == 6}
        for name, row in _fake_results().items()
    }
    text = requirements_markdown(six, SUITE, STACKS, 1.0, families=(6,))
    assert "over IPv6 (Linux" in text and "| IPv4 | 5 |" not in text
    assert "| IPv6 | 5 | 4 pass, 1 differ as declared | 4 pass, 1 known bugs |" in text
    assert _row(text, "MUST-15 (§3.7.1)")[4:] == ["1/1 pass"] * 2  # the IPv4 half is n.a.
    assert _row(text, "MUST-3 (§3.1)")[4:] == ["2/2 pass (1 not run)"] * 2


def test_cli_rebuilds_the_document_from_saved_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--save-json`` output read back by ``--from-json``: no run, no root."""
    results = [r for row in _fake_results().values() for r in row.values()]
    saved = tmp_path / "results.json"
    save_results(saved, results, STACKS, FAMILIES, 3.0)
    loaded = load_results(saved)
    assert loaded.stacks == STACKS and loaded.families == FAMILIES and loaded.elapsed == 3.0
    assert loaded.by_script == _fake_results()
    monkeypatch.chdir(REPO)
    doc = tmp_path / "docs" / "conformance.md"
    paths = [str(ROOT / name) for name in _fake_results()]
    assert main([*paths, "--from-json", str(saved), "--markdown-musts", str(doc)]) == 0
    text = doc.read_text()
    assert _row(text, "MUST-3 (§3.1)")[4] == "2/2 pass (1 not run)"
    assert f"run of 6 of the {len(SUITE)} scripts" in text
    # A file saved before runs had a family: IPv4 results.
    data = json.loads(saved.read_text())
    del data["families"]
    data["results"] = [r for r in data["results"] if r.pop("family") == 4]
    saved.write_text(json.dumps(data))
    old = load_results(saved)
    assert old.families == (4,)
    assert {run for row in old.by_script.values() for run in row} == {(s, 4) for s in STACKS}
    assert old.by_script[PAIR[0]][("linux", 4)] == replace(results[-4], family=4)


def test_docs_conformance_md_is_current() -> None:
    """docs/conformance.md has every MUST with the status musts.py gives it, and names
    every script that covers it: rerun the command it names after changing either."""
    text = (REPO / "docs" / "conformance.md").read_text()
    for n, section, _ in musts.RFC9293_MUSTS:
        row = _row(text, f"MUST-{n} (§{section})")
        assert row[2].split(":")[0] == musts.MUST_STATUS[n].implemented, n
        for name, script in SUITE.items():
            if f"MUST-{n}" in script.covers and name.split("/")[0] not in GENERATED_DIRS:
                assert f"`{name.removesuffix('.pkt')}`" in row[3], (n, name)
