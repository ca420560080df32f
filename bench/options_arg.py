"""``--option NAME=VALUE`` for the benchmarks: a TCP option for aiotcp's connections
(``aiotcp.TcpOptions`` field names), for A/B runs of one setting."""

from __future__ import annotations

import argparse
import ast


def option_arg(text: str) -> tuple[str, object]:
    """The value as a Python literal if it is one (numbers, True/False), else as text."""
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, not {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def add_option_argument(parser: argparse.ArgumentParser, whose: str) -> None:
    """``--option NAME=VALUE``, repeatable, for ``whose`` connections (the help text)."""
    parser.add_argument(
        "--option",
        type=option_arg,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a TCP option for {whose} (A/B runs), e.g. slow_start=standard",
    )
