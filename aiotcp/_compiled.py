"""Whether the mypyc-compiled modules run, or their sources.

``pip install`` compiles the hot modules with mypyc when it can (``setup.py``):
the sans-IO core and the per-segment glue (driver, egress, packet parsing, the
GSO sender).  The compiled modules sit next to their sources and Python prefers
them, so two situations switch every one of them back to its source at once (the
compiled modules call each other directly and cannot be mixed with interpreted
ones):

- ``AIOTCP_PURE_PYTHON=1``: to debug, profile line by line, or check that the
  pure-Python modules still pass the tests;
- a source file newer than the compiled modules (an edit or a checkout since the
  last install): running stale compiled code would silently ignore the edit.

``aiotcp/__init__.py`` imports this module before anything else of the package.
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

_PACKAGE = Path(__file__).resolve().parent


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules in their ``.py`` files, ahead of the extensions."""

    def __init__(self, sources: dict[str, Path]) -> None:
        self.sources = sources

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        source = self.sources.get(fullname)
        if source is None:
            return None
        return importlib.util.spec_from_file_location(fullname, source)


def _compiled_modules() -> dict[str, tuple[Path, float]]:
    """Each compiled module of the package: its source and the extension's mtime."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    found: dict[str, tuple[Path, float]] = {}
    for ext in _PACKAGE.rglob("*"):
        if ext.name.endswith(suffixes):
            source = ext.with_name(ext.name.split(".")[0] + ".py")
            parts = source.relative_to(_PACKAGE.parent).with_suffix("").parts
            found[".".join(parts)] = (source, ext.stat().st_mtime)
    return found


def _use_compiled() -> bool:
    compiled = _compiled_modules()
    if not compiled:
        return False
    if not os.environ.get("AIOTCP_PURE_PYTHON"):
        built = min(mtime for _, mtime in compiled.values())
        present = [source for source, _ in compiled.values() if source.exists()]
        if all(source.stat().st_mtime <= built for source in present):
            return True
        warnings.warn(
            "aiotcp: the compiled modules are older than their sources; running the "
            "sources (slower). Rebuild with `pip install -e .`.",
            stacklevel=2,
        )
    sources = {name: source for name, (source, _) in compiled.items() if source.exists()}
    sys.meta_path.insert(0, _SourceFinder(sources))
    return False


#: True when the mypyc-compiled modules run.
COMPILED: bool = _use_compiled()
