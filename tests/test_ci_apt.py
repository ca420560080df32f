"""``.ci/apt``: the setup's apt-get waits for a lock another apt holds, then succeeds."""

from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time
from pathlib import Path

from aiotcp.testing.netns import require_root

ROOT = Path(__file__).resolve().parent.parent


def test_apt_update_waits_for_the_lists_lock_instead_of_failing(tmp_path: Path) -> None:
    """An apt run elsewhere (unattended-upgrades) holds the lists lock for a while:
    plain ``apt-get update`` exits 100 at once; ``.ci/apt`` waits and succeeds.  The
    update runs on a private, empty lists directory, so the host's is untouched."""
    require_root()
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    isolated = [
        "update",
        "-qq",
        "-o",
        f"Dir::State::Lists={lists}",
        "-o",
        "Dir::Etc::sourcelist=/dev/null",
        "-o",
        f"Dir::Etc::sourceparts={tmp_path}",
    ]
    fd = os.open(lists / "lock", os.O_RDWR | os.O_CREAT)
    fcntl.lockf(fd, fcntl.LOCK_EX)  # a lock of this process: apt-get sees it held
    plain = subprocess.run(["apt-get", *isolated], capture_output=True, text=True)
    assert plain.returncode == 100 and "Could not get lock" in plain.stderr
    release = threading.Timer(2.0, os.close, (fd,))
    release.start()
    started = time.monotonic()
    waiting = subprocess.run(
        ["bash", str(ROOT / ".ci" / "apt"), *isolated], capture_output=True, text=True, timeout=60
    )
    release.join()
    assert waiting.returncode == 0, waiting.stderr
    assert time.monotonic() - started >= 1.5  # it waited for the lock
