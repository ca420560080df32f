"""The mypyc-compiled core and the pure-Python core are the same TCP.

``pip install`` compiles ``aiotcp/core`` when it can (``setup.py``) and the rest of
the suite then tests the compiled modules; these tests hold the two builds to one
behaviour, segment for segment, and make sure CI really tests the compiled one.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aiotcp

ROOT = Path(__file__).resolve().parents[2]
#: The names this codebase gives module constants (``MASK``, ``_TS_SACK``).
CONSTANT = re.compile(r"_?[A-Z][A-Z0-9_]*")

#: A lossy, jittery two-way transfer through the core simulator; prints one digest
#: of every wire segment both sides sent and of their final counters and estimates.
TRANSFER = """
import hashlib
import aiotcp
from aiotcp.core.options import TcpOptions
from aiotcp.core.segment import encode
from aiotcp.testing.corekit import LinkProfile, connected_pair

digest = hashlib.sha256()
profile = LinkProfile(delay=0.01, jitter=0.004, loss=0.03, duplicate=0.01)
link = connected_pair(TcpOptions(), TcpOptions(nodelay=True), profile, seed=7)
def record(to_b, seg):
    digest.update(encode(seg, b"\\x01\\x01\\x01\\x01", b"\\x02\\x02\\x02\\x02"))
    return False
link.drop_filter = record
data = bytes(range(256)) * 2000
link.write(False, data, then_shutdown=True)
link.write(True, data[::-1][:100_000], then_shutdown=True)
link.run_until(lambda: len(link.received[True]) == len(data)
               and len(link.received[False]) == 100_000)
assert bytes(link.received[True]) == data
for conn in (link.a, link.b):
    info = conn.info(link.now)
    digest.update(repr((info.counters, info.cwnd, info.ssthresh, info.srtt, info.rto)).encode())
print(aiotcp.COMPILED, digest.hexdigest())
"""


def run_transfer(*, pure: bool) -> tuple[str, str]:
    env = dict(os.environ)
    env.pop("AIOTCP_PURE_PYTHON", None)
    if pure:
        env["AIOTCP_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", TRANSFER], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], out[1]


@pytest.mark.skipif(not aiotcp.COMPILED, reason="the core is not compiled here")
def test_compiled_and_pure_core_send_the_same_segments() -> None:
    compiled, compiled_digest = run_transfer(pure=False)
    pure, pure_digest = run_transfer(pure=True)
    assert (compiled, pure) == ("True", "False")
    assert compiled_digest == pure_digest


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="only CI must have a compiler")
def test_ci_tests_the_compiled_core() -> None:
    """A build that silently fell back to pure Python would leave the suite testing
    code no benchmark runs."""
    assert aiotcp.COMPILED


def compiled_sources() -> list[Path]:
    """The modules ``setup.py`` hands to mypyc, read from its own two lists."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    lists = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and node.targets[0].id in ("INTERPRETED", "GLUE")
    }
    core = [
        p for p in (ROOT / "aiotcp" / "core").glob("*.py") if p.name not in lists["INTERPRETED"]
    ]
    return sorted(core) + [ROOT / name for name in lists["GLUE"]]


def test_module_constants_of_compiled_modules_are_final() -> None:
    """mypyc inlines a ``Final`` constant (or keeps it in a C static); any other
    module-level name is a dictionary lookup in the module's globals on every use.
    ``seq.MASK`` without ``Final`` made the compiled core's send path 2.3x slower
    (``bench/core_cost.py``: 7.9 against 3.4 us per 64 KB)."""
    missing = []
    for source in compiled_sources():
        for node in ast.parse(source.read_text()).body:
            if isinstance(node, ast.Assign):
                names = [t.id for t in node.targets if isinstance(t, ast.Name)]
                final = False
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
                final = "Final" in ast.unparse(node.annotation)
            else:
                continue
            missing += [
                f"{source.relative_to(ROOT)}:{node.lineno} {name}"
                for name in names
                if CONSTANT.fullmatch(name) and not final
            ]
    assert len(compiled_sources()) > 10
    assert not missing, "constants without Final in compiled modules: " + ", ".join(missing)
