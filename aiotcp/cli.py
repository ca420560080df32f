"""python -m aiotcp / aiotcp: the demo, the state table and the guard's housekeeping."""

from __future__ import annotations

import argparse
import sys


def _guard_status(args: argparse.Namespace) -> int:
    from aiotcp.io import iptables_guard

    chains = iptables_guard.status()
    top = iptables_guard.top_rules()
    if not chains and not top:
        print("no aiotcp firewall rules in this network namespace")
        return 0
    for line in top:
        print(line)
    for st in chains:
        state = "running" if st.alive else "DEAD (remove with: python -m aiotcp guard cleanup)"
        print(f"{st.chain}  pid {st.pid}  {state}")
        for rule in st.rules:
            print(f"    {rule}")
    return 0


def _guard_cleanup(args: argparse.Namespace) -> int:
    from aiotcp.io import iptables_guard

    removed = iptables_guard.cleanup(everything=args.all)
    if removed:
        print("removed: " + " ".join(removed))
    else:
        print("nothing to remove")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from aiotcp.demo import run

    return run(args.part, guard_kind=args.guard, ipv6=args.ipv6)


def _ss(args: argparse.Namespace) -> int:
    import json
    import time

    from aiotcp.control import query, running_stacks
    from aiotcp.sstable import format_rows, state_filter

    try:
        state_filter(args.state)
    except ValueError as exc:
        print(f"aiotcp ss: {exc}", file=sys.stderr)
        return 2

    while True:
        stacks = [(pid, path) for pid, path in running_stacks() if args.pid in (None, pid)]
        if not stacks:
            print(
                "no running aiotcp stack with a control socket "
                "(start it with Stack(control=True) or AIOTCP_CONTROL=1)"
            )
            return 1
        out = []
        for pid, path in stacks:
            try:
                rows = query(path, state=args.state, port=args.port)["rows"]
            except (OSError, ValueError, KeyError) as exc:
                out.append(f"pid {pid}: unreachable ({exc})")
                continue
            out.append(json.dumps(rows) if args.json else f"pid {pid}\n{format_rows(rows)}")
        if args.watch:
            print("\033[H\033[2J", end="")
        print("\n\n".join(out), flush=True)
        if not args.watch:
            return 0
        time.sleep(args.watch)


def _plot(args: argparse.Namespace) -> int:
    try:
        from aiotcp.plot import plot
    except ImportError:
        print("plotting needs matplotlib: pip install 'aiotcp[plot]'", file=sys.stderr)
        return 1
    out = args.output or str(args.pcap).rsplit(".", 1)[0] + ".png"
    print(plot(args.pcap, out, args.events))
    return 0


def _run(args: argparse.Namespace) -> int:
    """Run a program unchanged, with every loop it makes going over aiotcp (in
    ``--workers`` processes, which share the ports they listen on with
    ``reuse_port=True``: ``aiotcp.workers``)."""
    from aiotcp.io.privileges import HINT, missing_capabilities

    if args.module is None and not args.program:
        print("aiotcp run: name a script or -m module", file=sys.stderr)
        return 2
    missing = missing_capabilities(args.guard)
    if missing:
        print(f"aiotcp run: missing {', '.join(missing)}. {HINT}", file=sys.stderr)
        return 1
    if args.workers > 1:
        from aiotcp.workers import fork_workers

        return fork_workers(args.workers, lambda: _run_program(args))
    return _run_program(args)


def _run_program(args: argparse.Namespace) -> int:
    import asyncio
    import os
    import runpy

    from aiotcp.dropin import EventLoopPolicy, hook_uvloop
    from aiotcp.io.privileges import MissingPrivilegeError

    options: dict[str, object] = {"guard": args.guard}
    if args.pcap:
        options["pcap"] = args.pcap
    if args.control:
        options["control"] = True
    factory = None
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    asyncio.set_event_loop_policy(EventLoopPolicy(factory, **options))
    hook_uvloop(**options)
    try:
        if args.module is not None:
            sys.argv = [args.module, *args.program]
            runpy.run_module(args.module, run_name="__main__", alter_sys=True)
        else:
            script, *rest = args.program
            sys.argv = [script, *rest]
            sys.path[0] = os.path.dirname(os.path.abspath(script))
            runpy.run_path(script, run_name="__main__")
    except MissingPrivilegeError as exc:
        print(f"aiotcp run: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiotcp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="two-host demo in network namespaces (needs root)")
    demo.add_argument("part", nargs="?", choices=["all", "handshake", "streams"], default="all")
    demo.add_argument("--guard", choices=["iptables", "socket"], default="iptables")
    demo.add_argument(
        "--ipv6", action="store_true", help="over IPv6 (fd00:198:18::1 and ::2) instead of IPv4"
    )
    demo.set_defaults(func=_demo)

    ss = sub.add_parser("ss", help="connections of running stacks, like ss -tanoi")
    ss.add_argument("--pid", type=int, help="only this process's stack")
    ss.add_argument("--state", help="only this state (e.g. ESTABLISHED, time-wait)")
    ss.add_argument("--port", type=int, help="only connections with this local or remote port")
    ss.add_argument("--watch", type=float, metavar="SECONDS", help="refresh every SECONDS")
    ss.add_argument("--json", action="store_true", help="rows as JSON")
    ss.set_defaults(func=_ss)

    plot = sub.add_parser("plot", help="time-sequence graph and state timeline as PNG")
    plot.add_argument("pcap", help="a capture (Stack(pcap=...), tcpdump -w)")
    plot.add_argument("--events", help="state log written by Stack(events=...)")
    plot.add_argument("-o", "--output", help="PNG path (default: next to the pcap)")
    plot.set_defaults(func=_plot)

    run = sub.add_parser(
        "run",
        help="run a Python program unchanged, its TCP over aiotcp (needs root)",
        description="Runs SCRIPT (or -m MODULE) as python would, with every asyncio "
        "event loop it creates going over aiotcp: asyncio.run, new_event_loop, "
        "uvloop.run and uvloop.install included.",
    )
    run.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    run.add_argument("--guard", choices=["iptables", "socket"], default="iptables")
    run.add_argument("--pcap", metavar="FILE", help="write every segment to FILE (pcap)")
    run.add_argument("--control", action="store_true", help="serve the state table to `aiotcp ss`")
    run.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run the program in N processes; servers with reuse_port=True share their ports",
    )
    run.add_argument("-m", dest="module", metavar="MODULE", help="run a module, as python -m")
    run.add_argument("program", nargs=argparse.REMAINDER, help="SCRIPT [ARGS...]")
    run.set_defaults(func=_run)

    guard = sub.add_parser("guard", help="the RST guard's firewall rules (iptables, ip6tables)")
    gsub = guard.add_subparsers(dest="guard_command", required=True)
    gsub.add_parser(
        "status", help="list aiotcp's rules of both families in this namespace"
    ).set_defaults(func=_guard_status)
    cleanup = gsub.add_parser("cleanup", help="remove rules left by dead processes, both families")
    cleanup.add_argument("--all", action="store_true", help="also remove rules of live processes")
    cleanup.set_defaults(func=_guard_cleanup)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        # The program's own exceptions and exit status are its own, as under python.
        return _run(args)
    try:
        code: int = args.func(args)
    except PermissionError as exc:
        print(f"aiotcp: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
