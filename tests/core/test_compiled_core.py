"""The mypyc-compiled core and the pure-Python core are the same TCP.

``pip install`` compiles ``aiotcp/core`` when it can (``setup.py``) and the rest of
the suite then tests the compiled modules; these tests hold the two builds to one
behaviour, segment for segment, and make sure CI really tests the compiled one.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import aiotcp

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
