"""Markdown reports of a conformance run, and the run saved as JSON.

Two reports from the same results: ``markdown`` (the run itself: per folder, the
declared differences, the known bugs, every script) and ``requirements_markdown``
(``docs/conformance.md``, issue 10: every RFC 9293 MUST and every extension RFC
with whether aiotcp implements it, what tests it, and how each stack did on the
scripts that cover it).  Every result belongs to a stack and an address family
(IPv4, IPv6): the tables give each pair its count, and a requirement's cell one
count when both families agree.  Results can be saved (``save_results``) and
reloaded (``load_results``), so the document can be regenerated without root from
a run made once as root.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aiotcp.conformance.known import AIOTCP_KNOWN_BUGS
from aiotcp.conformance.matrix import GENERATED_DIRS
from aiotcp.conformance.musts import (
    EXTENSION_RFCS,
    EXTENSIONS,
    MUST_SECTIONS,
    MUST_STATUS,
    REQUIREMENTS,
    RFC9293_MUSTS,
    RFC9293_SECTIONS,
    Requirement,
)
from aiotcp.conformance.runner import STACKS, RunResult, StackKind
from aiotcp.conformance.script import FAMILIES, Family, Script

Run = tuple[StackKind, Family]
"""A column of results: one stack over one address family."""
ByScript = dict[str, dict[Run, RunResult]]
"""Results keyed by script name (``open/passive-basic.pkt``), then by run."""

REGENERATE = "sudo .venv/bin/python -m aiotcp.conformance --markdown-musts docs/conformance.md"
"""The command that writes ``docs/conformance.md`` (named in the document itself)."""


# ----------------------------------------------------------------- shared helpers


def family_name(family: Family) -> str:
    return f"IPv{family}"


def run_label(run: Run) -> str:
    """``linux IPv4``: a column heading."""
    return f"{run[0]} {family_name(run[1])}"


def runs_of(stacks: Iterable[StackKind], families: Iterable[Family]) -> tuple[Run, ...]:
    """Every (stack, family) pair, stack by stack: a stack's families side by side."""
    families = tuple(families)
    return tuple((s, f) for s in stacks for f in families)


def by_script_of(results: Iterable[RunResult]) -> ByScript:
    """Results by script name, then by (stack, family)."""
    out: ByScript = {}
    for r in results:
        out.setdefault(r.script, {})[(r.stack, r.family)] = r
    return out


@dataclass(frozen=True)
class Tally:
    """One stack over one family: how its runs went."""

    run: int
    passed: int
    differs: int
    """Failed exactly where the script declares Linux departs."""
    known: int
    """Listed aiotcp bugs, still failing."""
    unexpected: int

    def text(self) -> str:
        parts = [f"{self.passed} pass"]
        parts += [f"{self.differs} differ as declared"] * bool(self.differs)
        parts += [f"{self.known} known bugs"] * bool(self.known)
        parts += [f"{self.unexpected} UNEXPECTED"] * bool(self.unexpected)
        return ", ".join(parts)


def tally(by_script: ByScript, run: Run) -> Tally:
    """Counts of ``run``'s results (the CLI's last lines, the document's summary)."""
    results = [row[run] for row in by_script.values() if run in row]
    return Tally(
        len(results),
        sum(1 for r in results if r.passed and as_expected(r)),
        sum(1 for r in results if not r.passed and not r.expected and r.ok),
        sum(1 for r in results if is_known_bug(r)),
        sum(1 for r in results if not as_expected(r)),
    )


def family_totals(
    by_script: ByScript, stacks: tuple[StackKind, ...], families: tuple[Family, ...]
) -> list[str]:
    """A Markdown table: per family, the scripts run and each stack's tally."""
    out = [
        "| family | scripts run | " + " | ".join(stacks) + " |",
        "|---|---|" + "---|" * len(stacks),
    ]
    for family in families:
        tallies = [tally(by_script, (s, family)) for s in stacks]
        run = max(t.run for t in tallies)
        cells = " | ".join(t.text() for t in tallies)
        out.append(f"| {family_name(family)} | {run} | {cells} |")
    return out


def is_known_bug(r: RunResult) -> bool:
    """An aiotcp failure listed in ``aiotcp.conformance.known``."""
    return r.stack == "aiotcp" and r.script in AIOTCP_KNOWN_BUGS and not r.passed


def as_expected(r: RunResult) -> bool:
    """What the test suite accepts: ``ok``, or a listed aiotcp bug still failing (a
    listed one that passes is unexpected: the entry must go)."""
    if r.stack == "aiotcp" and r.script in AIOTCP_KNOWN_BUGS:
        return not r.passed
    return r.ok


def cell(r: RunResult) -> str:
    """A result as the CLI table shows it: verdict and seconds."""
    verdict = "known bug" if is_known_bug(r) else r.verdict
    if r.stack == "aiotcp" and r.passed and r.script in AIOTCP_KNOWN_BUGS:
        verdict = "FIXED (unlist it)"
    return f"{verdict} ({r.seconds:.1f}s)"


def summary(path: Path) -> str:
    """What a script checks: its leading comment, minus the generator's banner."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("# ").strip()
        if text and not text.startswith("Generated by"):
            lines.append(text)
    return md(" ".join(lines))


_RFC_REF = re.compile(r"RFC\s*(\d{3,4})(?:\s*§\s*(\d+(?:\.\d+)*))?")


def rfc_references(path: Path) -> set[str]:
    """``RFC 9293 §3.10.7.4``-style references in a script's leading comment: the
    RFC sections its author cites (the ``covers:`` header says which requirements
    of the MUST table it checks)."""
    refs = set()
    for number, section in _RFC_REF.findall(summary(path)):
        refs.add(f"RFC {number}" + (f" §{section}" if section else ""))
    return refs


def md(text: str) -> str:
    """Text safe in a Markdown table cell (``|`` splits cells, ``<`` starts HTML)."""
    return text.replace("|", "\\|").replace("<", "&lt;")


def _ref_key(ref: str) -> tuple[int, ...]:
    """Sort ``RFC 793 §3.2`` before ``RFC 9293 §3.10.7.4`` before ``RFC 9293 §3.10.8``."""
    return tuple(int(n) for n in re.findall(r"\d+", ref))


def _folder_table(by_script: ByScript, runs: tuple[Run, ...]) -> list[str]:
    """Per folder: scripts, passes per stack and family, declared differences, known
    bugs (a script that differs or is a known bug on any run counts once)."""
    out = [
        "| folder | scripts | " + " | ".join(f"{run_label(r)} pass" for r in runs) + " | notes |",
        "|---|---|" + "---|" * len(runs) + "---|",
    ]
    families = tuple(dict.fromkeys(f for _, f in runs))
    groups: dict[str, list[dict[Run, RunResult]]] = {}
    for name, row in by_script.items():
        groups.setdefault(name.split("/")[0], []).append(row)
    for group, rows in groups.items():
        passes = [sum(1 for row in rows if r in row and row[r].passed) for r in runs]
        differs = sum(1 for row in rows if any(r.reason for r in row.values()))
        known = sum(1 for row in rows if any(is_known_bug(r) for r in row.values()))
        notes = []
        if differs:
            notes.append(f"{differs} declared Linux differences")
        if known:
            notes.append(f"{known} known aiotcp bugs")
        if len(families) > 1:
            for family in families:  # scripts that ran over this family alone
                alone = sum(1 for row in rows if {f for _, f in row} == {family})
                if alone:
                    notes.append(f"{alone} {family_name(family)} only")
        cells = " | ".join(map(str, passes))
        out.append(f"| {group} | {len(rows)} | {cells} | {', '.join(notes)} |")
    return out


def markdown(
    by_script: ByScript,
    paths: dict[str, Path],
    stacks: tuple[StackKind, ...],
    elapsed: float,
    families: tuple[Family, ...] = FAMILIES,
) -> str:
    """The run as Markdown: the totals per family, a summary per folder, the
    differences with their reasons, the known aiotcp bugs, an index of cited RFC
    sections, then every script with what it checks and every verdict."""
    kernel = platform.release()
    runs = runs_of(stacks, families)
    out = [
        "# Conformance results",
        "",
        f"`python -m aiotcp.conformance`: {len(by_script)} scripts on "
        f"{' and '.join(stacks)} over {' and '.join(map(family_name, families))} "
        f"(Linux {kernel}), {elapsed:.0f} s wall clock.",
        "",
        *family_totals(by_script, stacks, families),
        "",
        *_folder_table(by_script, runs),
    ]
    differing = [(n, row) for n, row in by_script.items() if any(r.reason for r in row.values())]
    out += ["", "## Where Linux differs (declared)", "", "| script | why |", "|---|---|"]
    out += [
        f"| {n} | {md(next(r.reason for r in row.values() if r.reason))} |" for n, row in differing
    ]
    out += ["", "## Known aiotcp bugs", "", "| script | what |", "|---|---|"]
    out += [f"| {n} | {md(why)} |" for n, why in AIOTCP_KNOWN_BUGS.items() if n in by_script]
    index: dict[str, list[str]] = {}
    for name in by_script:
        for ref in rfc_references(paths[name]):
            index.setdefault(ref, []).append(name)
    out += ["", "## By RFC reference", "", "| reference | scripts |", "|---|---|"]
    for ref in sorted(index, key=_ref_key):
        names = index[ref]
        shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
        out.append(f"| {ref} | {shown} |")
    out += ["", "## Every script", ""]
    out.append("| script | checks | " + " | ".join(map(run_label, runs)) + " |")
    out.append("|---|---|" + "---|" * len(runs))
    for name, row in by_script.items():
        cells = " | ".join(cell(row[r]).rsplit(" (", 1)[0] if r in row else "n.a." for r in runs)
        out.append(f"| {name} | {summary(paths[name])} | {cells} |")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------- saved results


@dataclass(frozen=True)
class SavedRun:
    """A run as ``save_results`` writes it: enough to rebuild every report."""

    by_script: ByScript
    stacks: tuple[StackKind, ...]
    families: tuple[Family, ...]
    elapsed: float
    kernel: str


def save_results(
    path: Path,
    results: Iterable[RunResult],
    stacks: tuple[StackKind, ...],
    families: tuple[Family, ...],
    elapsed: float,
) -> None:
    """Write a run as JSON (``--save-json``): the results (each with its family) plus
    the kernel it ran on."""
    data = {
        "kernel": platform.release(),
        "stacks": list(stacks),
        "families": list(families),
        "elapsed": elapsed,
        "results": [asdict(r) for r in results],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")


def load_results(path: Path) -> SavedRun:
    """Read what ``save_results`` wrote (``--from-json``); a file from before runs
    had a family holds IPv4 results."""
    data: dict[str, Any] = json.loads(path.read_text())
    stacks = tuple(s for s in STACKS if s in data["stacks"])
    families = tuple(f for f in FAMILIES if f in data.get("families", [4]))
    by_script = by_script_of(RunResult(**item) for item in data["results"])
    return SavedRun(by_script, stacks, families, float(data["elapsed"]), str(data["kernel"]))


# ------------------------------------------------------------ requirement tables


def _note(text: str) -> str:
    """A ``musts.py`` note in a table cell (its reST-style double backticks as
    Markdown code spans)."""
    return md(text).replace("``", "`")


def _label_title(label: str) -> str:
    """``RFC5961-3`` as ``RFC 5961 §3``, ``RFC9293-3.10.7.4`` as ``RFC 9293 §3.10.7.4``."""
    number, _, section = label[3:].partition("-")
    return f"RFC {number}" + (f" §{section}" if section else "")


def _run_cell(names: list[str], run: Run, by_script: ByScript) -> str:
    """How ``run`` did on the scripts ``names``: ``3/3 pass``, with declared
    differences, known bugs, failures and scripts not run counted apart."""
    if not names:
        return "—"
    passed = differs = known = failed = missing = 0
    for name in names:
        r = by_script.get(name, {}).get(run)
        if r is None:
            missing += 1
        elif r.passed:
            passed += 1
        elif is_known_bug(r):
            known += 1
        elif r.ok:
            differs += 1
        else:
            failed += 1
    ran = len(names) - missing
    if not ran:
        return "not run"
    extras = [
        f"{n} {what}"
        for n, what in (
            (differs, "differ" if differs > 1 else "differs"),
            (known, "known bug" + "s" * (known > 1)),
            (failed, "FAILED"),
            (missing, "not run"),
        )
        if n
    ]
    return f"{passed}/{ran} pass" + (f" ({', '.join(extras)})" if extras else "")


def _per_family(cells: Mapping[Family, str]) -> str:
    """One text when every family's is the same, else each family's on its line."""
    texts = set(cells.values())
    if len(texts) == 1:
        return texts.pop()
    return "<br>".join(f"{family_name(f)}: {text}" for f, text in cells.items())


def _stack_cell(
    names: list[str],
    stack: StackKind,
    families: tuple[Family, ...],
    by_script: ByScript,
    scripts: Mapping[str, Script],
) -> str:
    """How ``stack`` did on the scripts ``names`` over each family (counting, for a
    family, the scripts that run over it): one count when the families agree."""
    return _per_family(
        {
            f: _run_cell([n for n in names if f in scripts[n].families], (stack, f), by_script)
            for f in families
        }
    )


def _script_name(name: str) -> str:
    """``open/passive-basic.pkt`` as `` `open/passive-basic` `` (the README's style)."""
    return f"`{name.removesuffix('.pkt')}`"


def _scripts_cell(names: list[str]) -> list[str]:
    """Hand-written scripts by name; a generated folder as one entry with a count."""
    shown: list[str] = []
    generated: dict[str, int] = {}
    for name in sorted(names):
        folder = name.split("/")[0]
        if folder in GENERATED_DIRS:
            generated[folder] = generated.get(folder, 0) + 1
        else:
            shown.append(_script_name(name))
    shown += [f"`{folder}/` ({n} scripts)" for folder, n in generated.items()]
    return shown


def _tests_cell(tests: Iterable[str]) -> list[str]:
    return [f"`{t.removeprefix('tests/')}`" for t in tests]


def _rows(
    requirements: Iterable[tuple[str, str, Requirement]],
    covering: Mapping[str, list[str]],
    by_script: ByScript,
    stacks: tuple[StackKind, ...],
    families: tuple[Family, ...],
    scripts: Mapping[str, Script],
) -> list[str]:
    """Table rows: requirement, text, implemented, tested by, one column per stack."""
    out = []
    for shown, text, req in requirements:
        names = covering.get(req.label, [])
        status = req.status
        tested = _scripts_cell(names) + _tests_cell(status.tests)
        implemented = status.implemented + (f": {_note(status.note)}" if status.note else "")
        results = " | ".join(_stack_cell(names, s, families, by_script, scripts) for s in stacks)
        tested_cell = "<br>".join(tested) if tested else "—"
        out.append(f"| {shown} | {md(text)} | {implemented} | {tested_cell} | {results} |")
    return out


def _header(first: str, stacks: tuple[StackKind, ...]) -> list[str]:
    cols = f"| {first} | requirement | implemented | tested by | " + " | ".join(stacks) + " |"
    return [cols, "|---|---|---|---|" + "---|" * len(stacks)]


def _differences(
    by_script: ByScript, scripts: Mapping[str, Script], families: tuple[Family, ...]
) -> list[str]:
    """Every scenario where the stacks part ways, grouped by reason; then the ones
    that run over one address family only."""
    out: list[str] = []
    reasons: dict[str, list[str]] = {}
    for name, script in scripts.items():
        if not script.oracle_linux:
            reasons.setdefault(script.differs_reason, []).append(name)
    out += [
        "### Declared: Linux departs from the script (`expect-linux: differs`)",
        "",
        "Linux must fail each of these exactly at the line marked `!`; aiotcp must pass.",
        "",
        "| scenarios | why | Linux in this run |",
        "|---|---|---|",
    ]
    for reason, names in reasons.items():
        shown = "<br>".join(_script_name(n) for n in names)
        seen: dict[Family, str] = {}
        for family in families:
            row = (by_script.get(n, {}).get(("linux", family)) for n in names)
            runs = [r for r in row if r is not None]
            held = sum(1 for r in runs if r.ok)
            seen[family] = f"{held}/{len(runs)} as declared" if runs else "not run"
        out.append(f"| {shown} | {md(reason)} | {_per_family(seen)} |")
    out += [
        "",
        "### Known aiotcp bugs (Linux passes, aiotcp fails)",
        "",
        "| scenario | what |",
        "|---|---|",
    ]
    out += [
        f"| {_script_name(n)} | {md(why)} |" for n, why in AIOTCP_KNOWN_BUGS.items() if n in scripts
    ]
    settings = [
        (name, script)
        for name, script in scripts.items()
        if script.linux_sysctls or script.aiotcp_options
    ]
    out += [
        "",
        "### Same behaviour only with a non-default setting on one side",
        "",
        "These pass on both stacks because the script changes one stack's default "
        "(the script's comment says why).",
        "",
        "| scenario | Linux | aiotcp |",
        "|---|---|---|",
    ]
    for name, script in settings:
        linux = ", ".join(f"`{k}={v}`" for k, v in script.linux_sysctls.items()) or "default"
        ours = ", ".join(f"`{k}={v}`" for k, v in script.aiotcp_options.items()) or "default"
        out.append(f"| {_script_name(name)} | {linux} | {ours} |")
    one_family = [(name, script) for name, script in scripts.items() if script.family_reason]
    out += [
        "",
        "### One address family only",
        "",
        "Every other scenario runs over IPv4 and over IPv6; these state what the "
        "RFCs themselves set differently per family.",
        "",
        "| scenario | runs over | why |",
        "|---|---|---|",
    ]
    out += [
        f"| {_script_name(name)} | {' and '.join(map(family_name, script.families))} "
        f"| {md(script.family_reason)} |"
        for name, script in one_family
    ]
    unexpected = [
        r for name in scripts for r in by_script.get(name, {}).values() if not as_expected(r)
    ]
    out += ["", "### Unexpected results in this run", ""]
    if unexpected:
        out += ["| scenario | stack | family | verdict |", "|---|---|---|---|"]
        out += [
            f"| `{r.script}` | {r.stack} | {family_name(r.family)} "
            f"| {md(cell(r).rsplit(' (', 1)[0])} |"
            for r in unexpected
        ]
    else:
        out.append("None: every result is what its script declares.")
    return out


def _counts(scripts: Mapping[str, Script]) -> tuple[dict[str, list[str]], str]:
    """Scripts per requirement label, and the MUST tally line of the summary."""
    covering: dict[str, list[str]] = {}
    for name, script in scripts.items():
        for label in script.covers:
            covering.setdefault(label, []).append(name)
    tally: dict[str, int] = {}
    for status in MUST_STATUS.values():
        tally[status.implemented] = tally.get(status.implemented, 0) + 1
    by_script = sum(1 for n in MUST_STATUS if f"MUST-{n}" in covering)
    elsewhere = sum(1 for n, s in MUST_STATUS.items() if f"MUST-{n}" not in covering and s.tests)
    untested = len(MUST_STATUS) - by_script - elsewhere
    line = (
        f"{len(MUST_STATUS)} MUSTs: implemented "
        + ", ".join(f"{k} {tally.get(k, 0)}" for k in ("yes", "partly", "no", "n.a."))
        + f"; checked by conformance scripts {by_script}, only by other tests {elsewhere}, "
        f"by no test {untested}."
    )
    return covering, line


def requirements_markdown(
    by_script: ByScript,
    scripts: Mapping[str, Script],
    stacks: tuple[StackKind, ...],
    elapsed: float,
    kernel: str | None = None,
    families: tuple[Family, ...] = FAMILIES,
) -> str:
    """``docs/conformance.md``: the RFC 9293 MUST table, the unnumbered RFC 9293
    requirements the scripts check, the extension RFCs, and every scenario where
    aiotcp and Linux differ, with the reason.

    ``scripts`` are every script of the suite by name (their ``covers:`` headers
    map them to requirements); ``by_script`` what the run produced for them.
    """
    kernel = kernel or platform.release()
    covering, must_line = _counts(scripts)
    run = sum(1 for name in scripts if name in by_script)
    over = " and ".join(map(family_name, families))
    out = [
        "# Conformance: RFC 9293 and the extensions aiotcp claims",
        "",
        f"Generated by `{REGENERATE}` from a run of {run} of the {len(scripts)} "
        f"scripts in `aiotcp/conformance/scripts/` on {' and '.join(stacks)} over {over} "
        f"(Linux {kernel}, "
        f"{elapsed:.0f} s wall clock); edit the sources, not this file: requirement "
        "status and the tests outside the scripts are in `aiotcp/conformance/musts.py`, "
        "which scripts check what in each script's `covers:` header, known bugs in "
        "`aiotcp/conformance/known.py`.",
        "",
        "How to read the tables: **implemented** is yes, partly, no or n.a. (with why); "
        "**tested by** lists the conformance scripts that cover the requirement (each "
        "runs against both stacks, over IPv4 and over IPv6; generated folders are "
        "counted), then pytest tests elsewhere in `tests/`; the **linux** and **aiotcp** "
        "columns say how each stack did on those scripts — one count when both address "
        "families agree, one per family when not; *differs* is a difference the script "
        "declares (see the last section), *—* means only tests outside the scripts check "
        "it, on aiotcp alone.",
        "",
        "## Summary",
        "",
        must_line,
        "",
        "The scripts run over each address family: a script never names an address, and "
        "the few whose expectation depends on the family (the default MSS) come as a "
        "pair, one per family (see the last section).",
        "",
        *family_totals(by_script, stacks, families),
        "",
        *_folder_table(
            {n: by_script[n] for n in scripts if n in by_script}, runs_of(stacks, families)
        ),
        "",
        "## RFC 9293 MUST requirements",
        "",
        "MUST-1 … MUST-69 as RFC 9293 numbers them (§ is where the `(MUST-n)` tag "
        "stands; MUST-22 has no tag in the text, only its Appendix B row).",
        "",
        *_header("MUST", stacks),
        *_rows(
            (
                (f"MUST-{n} (§{MUST_SECTIONS[n]})", text, REQUIREMENTS[f"MUST-{n}"])
                for n, _, text in RFC9293_MUSTS
            ),
            covering,
            by_script,
            stacks,
            families,
            scripts,
        ),
        "",
        "## RFC 9293 requirements without a MUST number",
        "",
        "What most scripts check — the segment acceptability test and the processing "
        "steps of §3.10.7 — is written without MUST tags.",
        "",
        *_header("section", stacks),
        *_rows(
            ((_label_title(r.label), r.title, r) for r in RFC9293_SECTIONS),
            covering,
            by_script,
            stacks,
            families,
            scripts,
        ),
        "",
        "## Extension RFCs",
        "",
        "The RFCs aiotcp claims (" + ", ".join(f"RFC {n}" for n in EXTENSION_RFCS) + "), by "
        "section where scripts and tests tell sections apart.",
        "",
        *_header("RFC", stacks),
        *_rows(
            ((_label_title(r.label), r.title, r) for r in EXTENSIONS),
            covering,
            by_script,
            stacks,
            families,
            scripts,
        ),
        "",
        "## Not (fully) implemented",
        "",
        "| MUST | requirement | status |",
        "|---|---|---|",
    ]
    for n, _, text in RFC9293_MUSTS:
        status = MUST_STATUS[n]
        if status.implemented != "yes":
            out.append(f"| MUST-{n} | {md(text)} | {status.implemented}: {_note(status.note)} |")
    out += ["", "## Where aiotcp and Linux differ", "", *_differences(by_script, scripts, families)]
    return "\n".join(out) + "\n"
