"""Congestion control: window arithmetic behind one small interface (RFC 5681).

``base.CongestionControl`` is what the connection calls; each algorithm is a
module of this package that registers itself under its name (``newreno``,
``cubic``), and ``create`` imports them all the first time a name is not yet
known.  Adding an algorithm is adding one file here.
"""

from __future__ import annotations

import importlib
import pkgutil

from aiotcp.core.congestion.base import ALGORITHMS, CongestionControl
from aiotcp.core.congestion.hystart import DEFAULT_SLOW_START


def create(
    name: str, mss: int, initial_window: int = 10, slow_start: str = DEFAULT_SLOW_START
) -> CongestionControl:
    """A new instance of the algorithm ``TcpOptions.congestion`` names."""
    if name not in ALGORITHMS:
        _import_algorithms()
    try:
        factory = ALGORITHMS[name]
    except KeyError:
        raise ValueError(
            f"unknown congestion control {name!r}; choose from {sorted(ALGORITHMS)}"
        ) from None
    cc = factory(mss, initial_window)
    if slow_start != DEFAULT_SLOW_START:  # the algorithms start with the default
        cc.set_slow_start(slow_start)
    return cc


def _import_algorithms() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")
