"""An installed aiotcp carries its conformance suite: the runner works outside a checkout.

The wheel is built pure-Python (``AIOTCP_PURE_PYTHON=1``: mypyc would take minutes)
and unpacked into a directory of its own; the checks run from a working directory
that is not the repository.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from aiotcp.conformance.__main__ import DEFAULT_ROOT
from aiotcp.conformance.script import find_scripts
from aiotcp.testing.netns import is_root

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "AIOTCP_PURE_PYTHON": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        env=env,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("aiotcp-*.whl")
    target = tmp_path_factory.mktemp("site")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(target)
    return target


def run_installed(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(
        [sys.executable, *args], cwd="/", env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_carries_every_conformance_script(installed: Path) -> None:
    code = (
        "import aiotcp.conformance.__main__ as m, aiotcp.conformance.script as s;"
        "print(m.DEFAULT_ROOT); print(len(s.find_scripts(m.DEFAULT_ROOT)))"
    )
    out = run_installed(installed, "-c", code)
    assert out.returncode == 0, out.stderr
    root, count = out.stdout.split()
    assert Path(root).is_relative_to(installed)
    assert int(count) == len(find_scripts(DEFAULT_ROOT)) > 500


def test_the_installed_runner_tests_the_kernel_from_anywhere(installed: Path) -> None:
    """``--stack linux``: the suite as a test of the kernel's TCP, no checkout needed."""
    if not is_root():
        pytest.skip("needs root (network namespaces)")
    script = installed / "aiotcp" / "conformance" / "scripts" / "close" / "passive-close.pkt"
    out = run_installed(installed, "-m", "aiotcp.conformance", "--stack", "linux", str(script))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 runs, 0 unexpected" in out.stdout  # one per family
