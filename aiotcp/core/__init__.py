"""The sans-IO TCP core: no sockets, no asyncio, no clock (time is an argument).

``pip install`` compiles these modules with mypyc when it can (see ``setup.py``).
The compiled modules sit next to their sources and Python prefers them, so two
situations fall back to the sources here, for every core module at once (the
compiled modules call each other directly and cannot be mixed with interpreted
ones):

- ``AIOTCP_PURE_PYTHON=1``: to debug, profile line by line, or check that the
  pure-Python core still passes the tests;
- a source file newer than the compiled modules (an edit or a checkout since the
  last install): running stale compiled code would silently ignore the edit.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

_HERE = Path(__file__).resolve().parent


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds ``aiotcp.core.*`` in the ``.py`` files, ahead of the extension modules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        source = _HERE / f"{name}.py"
        if package != __name__ or not source.is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _compiled_modules() -> dict[str, float]:
    """Modification time of each compiled core module, by module name."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return {
        p.name.split(".")[0]: p.stat().st_mtime
        for p in _HERE.iterdir()
        if p.name.endswith(suffixes)
    }


def _use_compiled() -> bool:
    compiled = _compiled_modules()
    if not compiled:
        return False
    if not os.environ.get("AIOTCP_PURE_PYTHON"):
        built = min(compiled.values())
        sources = (_HERE / f"{name}.py" for name in compiled)
        if all(p.stat().st_mtime <= built for p in sources if p.exists()):
            return True
        warnings.warn(
            "aiotcp: the compiled core is older than its sources; running the sources "
            "(slower). Rebuild with `pip install -e .`.",
            stacklevel=2,
        )
    sys.meta_path.insert(0, _SourceFinder())
    return False


#: True when the core runs as mypyc-compiled extension modules.
COMPILED: bool = _use_compiled()
