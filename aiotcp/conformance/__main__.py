"""``python -m aiotcp.conformance [PATH ...]``: run scripts on both stacks, print a table.

Needs root (namespaces, raw sockets).  PATH is a ``.pkt`` file or a folder (default:
the suite that ships with the package, ``aiotcp/conformance/scripts``; ``--stack
linux`` runs it against the kernel alone, on any machine).  Every script runs over
IPv4 and over IPv6 (``--family 4`` or ``6`` for one), except the few that say they
hold for one family only; the last lines count each family's results.  Exit status 0 when
every result is what its script declares (Linux passes, or differs as declared;
aiotcp passes, or fails a script listed in ``aiotcp.conformance.known``), 1
otherwise.

``--markdown-musts docs/conformance.md`` also writes the requirement tables of issue
10 (``aiotcp.conformance.report``); ``--save-json`` keeps the results, and
``--from-json`` rebuilds the reports from them without running anything (no root).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from aiotcp.conformance.known import AIOTCP_KNOWN_BUGS
from aiotcp.conformance.report import (
    ByScript,
    as_expected,
    by_script_of,
    cell,
    family_name,
    is_known_bug,
    load_results,
    markdown,
    requirements_markdown,
    rfc_references,
    run_label,
    runs_of,
    save_results,
    tally,
)
from aiotcp.conformance.runner import STACKS, Job, StackKind, run_many
from aiotcp.conformance.script import (
    FAMILIES,
    Family,
    Script,
    ScriptError,
    find_scripts,
    load_script,
)

__all__ = ["main", "markdown", "rfc_references"]

DEFAULT_ROOT = Path(__file__).resolve().parent / "scripts"
"""The suite, shipped as package data: an installed aiotcp runs it too."""


def _common_root(paths: list[Path]) -> Path | None:
    """The folder names are relative to: the suite's root if inside it."""
    root = DEFAULT_ROOT.resolve()
    if all(root in p.resolve().parents for p in paths):
        return root
    return None


def _load(files: list[Path], root: Path | None) -> dict[str, tuple[Script, Path]]:
    """Parse every script up front (a typo fails fast, not in a worker), by name."""
    scripts = {}
    for f in files:
        script = load_script(f, root)
        scripts[script.name] = (script, f)
    return scripts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aiotcp.conformance", description=__doc__)
    parser.add_argument("paths", nargs="*", type=Path, help="scripts or folders")
    parser.add_argument("--stack", choices=[*STACKS, "both"], default="both")
    parser.add_argument(
        "--family",
        choices=["4", "6", "both"],
        default="both",
        help="address family: IPv4, IPv6 or both (the default: what docs/conformance.md shows)",
    )
    parser.add_argument("-j", "--jobs", type=int, default=4, help="parallel runs (processes)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every failure")
    parser.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write the results as Markdown"
    )
    parser.add_argument(
        "--markdown-musts",
        type=Path,
        metavar="FILE",
        help="also write the RFC 9293 MUST / extension RFC tables (docs/conformance.md)",
    )
    parser.add_argument("--save-json", type=Path, metavar="FILE", help="save the results")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="FILE",
        help="do not run: report the results a --save-json run saved (no root needed)",
    )
    args = parser.parse_args(argv)

    files = [f for p in (args.paths or [DEFAULT_ROOT]) for f in find_scripts(p)]
    if not files:
        print("no .pkt scripts found", file=sys.stderr)
        return 2
    root = _common_root(files)
    try:
        scripts = _load(files, root)
        # The MUST tables name every script of the suite, also when only some ran.
        suite = _load(find_scripts(DEFAULT_ROOT), DEFAULT_ROOT.resolve()) if root else scripts
    except ScriptError as exc:
        print(exc, file=sys.stderr)
        return 2
    stacks: tuple[StackKind, ...] = STACKS if args.stack == "both" else (args.stack,)
    families: tuple[Family, ...] = (
        FAMILIES if args.family == "both" else (4,) if args.family == "4" else (6,)
    )
    by_script: ByScript = {}
    kernel = None
    if args.from_json is not None:
        saved = load_results(args.from_json)
        stacks, families, elapsed, kernel = (
            saved.stacks,
            saved.families,
            saved.elapsed,
            saved.kernel,
        )
        stale = sorted(set(saved.by_script) - set(scripts))
        if stale:
            print(f"ignoring {len(stale)} saved results of other scripts", file=sys.stderr)
        by_script = {n: saved.by_script[n] for n in scripts if n in saved.by_script}
        results = [r for row in by_script.values() for r in row.values()]
        if not results:
            print(f"{args.from_json} holds no results for these scripts", file=sys.stderr)
            return 2
    else:
        jobs: list[Job] = [
            (path, stack, family)
            for script, path in scripts.values()
            for stack in stacks
            for family in families
            if family in script.families
        ]
        start = time.monotonic()
        results = run_many(jobs, root=root, workers=args.jobs)
        elapsed = time.monotonic() - start
        by_script = by_script_of(results)

    runs = runs_of(stacks, families)
    width = max(len(name) for name in by_script)
    print(f"{'script':<{width}}  " + "  ".join(f"{run_label(r):<22}" for r in runs) + "  note")
    for name, row in by_script.items():
        cells = "  ".join((cell(row[r]) if r in row else "n.a.")[:22].ljust(22) for r in runs)
        note = next((r.reason for r in row.values() if r.reason), "")
        if name in AIOTCP_KNOWN_BUGS:
            note = "aiotcp bug: " + AIOTCP_KNOWN_BUGS[name]
        print(f"{name:<{width}}  {cells}  {note}")
    bad = [r for r in results if not as_expected(r)]
    known = sum(1 for r in results if is_known_bug(r))
    print()
    for family in families:
        counts = [tally(by_script, (stack, family)) for stack in stacks]
        print(
            f"{family_name(family)}: {max(t.run for t in counts)} scripts; "
            + "; ".join(f"{stack} {t.text()}" for stack, t in zip(stacks, counts, strict=True))
        )
    print(
        f"{len(results)} runs, {len(bad)} unexpected, {known} known aiotcp bugs, "
        f"{elapsed:.1f} s wall clock"
    )
    if args.save_json is not None:
        save_results(args.save_json, results, stacks, families, elapsed)
        print(f"wrote {args.save_json}")
    if args.markdown is not None:
        paths = {name: path for name, (_, path) in scripts.items()}
        args.markdown.write_text(markdown(by_script, paths, stacks, elapsed, families))
        print(f"wrote {args.markdown}")
    if args.markdown_musts is not None:
        parsed = {name: script for name, (script, _) in suite.items()}
        text = requirements_markdown(by_script, parsed, stacks, elapsed, kernel, families)
        args.markdown_musts.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_musts.write_text(text)
        print(f"wrote {args.markdown_musts}")
    if args.verbose:
        for r in bad:
            print(
                f"\n=== {r.script} on {r.stack} over {family_name(r.family)}: {r.verdict}\n"
                f"{r.detail}"
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
