"""Compiles the sans-IO core (``aiotcp/core``) and the per-segment glue with mypyc.

The core is where a bulk transfer spends most of its Python time
(``bench/core_cost.py``); compiled, it costs a fraction of the interpreted version
(docs/performance.md).  Every module stays plain, typed Python.  Without mypyc or a
working C compiler, or with ``AIOTCP_PURE_PYTHON=1`` set, the package installs
as pure Python and behaves the same, only slower (``aiotcp.COMPILED`` says which
one runs; ``aiotcp/_compiled.py`` also ignores a build older than its sources).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).parent
#: Core modules left interpreted.  ``options.py`` holds what users pass in: a compiled
#: dataclass would reject ``nodelay=1`` with a message that names no option, and
#: loses the ``int | None`` annotations its own checks read.
INTERPRETED = {"__init__.py", "options.py"}
#: What every segment passes through between the socket and the core.  The
#: transport and streams stay interpreted (they subclass asyncio's classes), and so
#: does the raw socket (the scripted test peer keys it in a weak dictionary, which
#: compiled classes do not support).
GLUE = ["aiotcp/driver.py", "aiotcp/egress.py", "aiotcp/io/gso.py", "aiotcp/io/packet.py"]


class OptionalBuildExt(build_ext):
    """All compiled modules or none: a failed build leaves pure Python."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # compiler missing or failing: any of several types
            for ext in self.extensions:
                Path(self.get_ext_fullpath(ext.name)).unlink(missing_ok=True)
            print(f"aiotcp: compiling failed ({exc}); pure Python", file=sys.stderr)


def compiled_modules() -> list[Any]:
    if os.environ.get("AIOTCP_PURE_PYTHON"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("aiotcp: mypyc not available; pure Python", file=sys.stderr)
        return []
    core = (HERE / "aiotcp" / "core").rglob("*.py")
    modules = sorted(str(p.relative_to(HERE)) for p in core if p.name not in INTERPRETED)
    modules += GLUE
    return mypycify(modules, opt_level="3", debug_level="1")


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
