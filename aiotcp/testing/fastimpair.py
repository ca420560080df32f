"""A cheap delay (and loss) impairer: a small C NFQUEUE helper instead of Python.

:func:`aiotcp.testing.impair.impair` runs a Python process per packet, and its CPU,
not the link, bounds a fast sender (kernel cubic moves about a fifth of what it moves
on the bare veth through it). :func:`fast_impair` puts the same ``NFQUEUE`` rules in
the same places, but the queue is read by ``fastimpair.c``: metadata-only queue
messages (no payload copied to user space), ``recvmmsg`` for up to 128 of them per
system call, and one batch verdict for every packet that is due, which a constant
delay allows (packets leave in the order they arrived).

What it does, and what it does not:

* a constant one-way ``delay`` (no jitter, so no reordering);
* seeded random ``loss`` per packet (its own generator: not the same drop sequence
  as the Python helper's for the same seed);
* no duplicates, reordering, jitter or CE marks: those stay with :func:`impair`.

``gso``: with ``NFQA_CFG_F_GSO`` the kernel hands the queue GSO/GRO aggregates (up to
64 KB, some 45 wire segments) whole instead of segmenting them first. For a constant
delay that changes nothing the receiver can see (the segments of one aggregate
arrive together either way) and costs far less; for loss it would drop whole
aggregates, so ``gso`` defaults to on only when ``loss`` is 0, and is refused with
loss.  With ``gso`` off every decision is about one wire segment, as with
:func:`impair`.

The helper is compiled on first use (``gcc``, ``libnetfilter-queue-dev``; ``.ci/setup``
installs both) into ``$AIOTCP_CACHE_DIR`` (default ``~/.cache/aiotcp``), named by the
source's hash, so an edited source is rebuilt and nothing binary is committed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiotcp.testing.impair import Direction, Impairment, ImpairStats, queue_rules, serving
from aiotcp.testing.netns import Host

SOURCE = Path(__file__).with_name("fastimpair.c")
LIBS = ["-lnetfilter_queue", "-lnfnetlink"]


class FastImpairUnavailable(RuntimeError):
    """The C helper cannot be built here (the message says what is missing)."""


def cache_dir() -> Path:
    return Path(os.environ.get("AIOTCP_CACHE_DIR") or Path.home() / ".cache" / "aiotcp")


def helper_path() -> Path:
    """Where the helper for the current source is (or will be) built."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    return cache_dir() / f"fastimpair-{digest}"


def build_helper() -> Path:
    """The compiled helper, building it first if needed (safe to race: the binary is
    written under a temporary name and renamed into place)."""
    path = helper_path()
    if path.exists():
        return path
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise FastImpairUnavailable("no C compiler (apt-get install gcc)")
    if not Path("/usr/include/libnetfilter_queue/libnetfilter_queue.h").exists():
        raise FastImpairUnavailable(
            "libnetfilter_queue headers missing (apt-get install libnetfilter-queue-dev)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".fastimpair-")
    os.close(fd)
    try:
        proc = subprocess.run(
            [cc, "-O2", "-Wall", "-o", tmp, str(SOURCE), *LIBS],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if proc.returncode != 0:
            raise FastImpairUnavailable(f"compiling {SOURCE.name} failed: {proc.stderr.strip()}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def unavailable_reason() -> str | None:
    """None when :func:`fast_impair` can run here, else why not."""
    try:
        build_helper()
    except (FastImpairUnavailable, OSError) as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def fast_impair(
    host: Host,
    delay: float = 0.0,
    loss: float = 0.0,
    seed: int = 0,
    direction: Direction = "in",
    proto: str | None = None,
    gso: bool | None = None,
) -> Iterator[Impairment]:
    """Delay (``delay`` seconds, constant) and drop (probability ``loss``) packets on
    ``host``'s veth for the duration of the block, with the C helper.

    Rules, hooks and their order of set-up and tear-down are those of
    :func:`aiotcp.testing.impair.impair`. ``gso`` (default: ``loss == 0``) keeps
    GSO/GRO aggregates whole; it is refused with loss. ``stats`` (filled on exit)
    has ``seen``/``dropped``/``delayed``; ``counters`` has everything the helper
    reports (``max_held``, ``verdict_calls``, ``recv_calls``, ``enobufs``).
    """
    if not 0.0 <= loss <= 1.0:
        raise ValueError(f"loss must be a probability, got {loss}")
    if delay < 0:
        raise ValueError("delay must be >= 0")
    if gso is None:
        gso = loss == 0.0
    if gso and loss:
        raise ValueError("gso=True would drop whole aggregates: use it with loss=0 only")
    binary = build_helper()
    queue, _, rules = queue_rules(host, direction, proto)
    args = [f"--queue={queue}", f"--delay-us={round(delay * 1e6)}", f"--loss={loss}"]
    args += [f"--seed={seed}"] + (["--gso"] if gso else [])
    cmd = [str(binary)]
    for arg in args:  # the helper takes "--name value"
        cmd += arg.split("=", 1)
    proc = host.popen(cmd, stdout=subprocess.PIPE, text=True)
    result = Impairment(host=host, queue=queue, rules=rules, pid=proc.pid, helper="c")

    def on_report(counters: dict[str, Any]) -> None:
        result.counters = counters
        result.stats = ImpairStats(
            seen=counters["seen"], dropped=counters["dropped"], delayed=counters["delayed"]
        )

    with serving(host, proc, rules, "fastimpair helper", on_report):
        yield result
