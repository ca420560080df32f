"""Congestion control algorithms are modules that register themselves: adding one is
adding one file to ``aiotcp.core.congestion``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from aiotcp.core import congestion
from aiotcp.core.congestion.base import ALGORITHMS
from aiotcp.core.congestion.bbr import Bbr
from aiotcp.core.congestion.cubic import Cubic
from aiotcp.core.congestion.newreno import NewReno


def test_the_builtin_algorithms_are_found_by_name() -> None:
    assert isinstance(congestion.create("cubic", 1448), Cubic)
    assert type(congestion.create("newreno", 1448)) is NewReno
    assert type(congestion.create("reno", 1448)) is NewReno
    assert type(congestion.create("bbr", 1448)) is Bbr


def test_an_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match=r"choose from \['bbr', 'cubic', 'newreno', 'reno'"):
        congestion.create("vegas", 1448)


def test_a_new_module_in_the_package_is_an_algorithm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file placed beside newreno.py (here: a directory added to the package's
    path) registers itself when ``create`` first meets its name."""
    (tmp_path / "fixed_window.py").write_text(
        textwrap.dedent(
            """
            from aiotcp.core.congestion.base import register
            from aiotcp.core.congestion.newreno import NewReno

            class FixedWindow(NewReno):
                name = "fixed"

                def on_ack(self, acked, flight_size, now):
                    pass

            register("fixed", FixedWindow)
            """
        )
    )
    monkeypatch.setattr(congestion, "__path__", [*congestion.__path__, str(tmp_path)])
    monkeypatch.delitem(ALGORITHMS, "fixed", raising=False)
    cc = congestion.create("fixed", 1000, initial_window=4)
    try:
        assert cc.name == "fixed" and cc.cwnd == 4000
        cc.on_ack(1000, 4000, 0.0)
        assert cc.cwnd == 4000
    finally:
        ALGORITHMS.pop("fixed", None)
