"""bench/aiohttp_bench.py's own arithmetic, without root: what it reads and reports.

The benchmark itself needs namespaces and minutes; what would silently break in it
is reading wrk's output (units, a missing latency table, errors wrk still exits 0
on), pairing rounds into ratios, and the options.  The TLS application's protocol
is checked end to end on loopback, on the kernel: a bench run that starts it
would otherwise be the first to find out it hangs.
"""

from __future__ import annotations

import importlib.util
import pathlib
import socket
import subprocess
import sys
from types import ModuleType

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aiohttp_bench", BENCH / "aiohttp_bench.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


ab = load_bench()

# Captured from `wrk -t1 -c50 -d5s --latency` against bench/apps/hello.py.
WRK_OUTPUT = """\
Running 5s test @ http://198.18.0.1:8080/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    11.97ms   25.62ms 207.72ms   93.09%
    Req/Sec     8.81k     3.39k   17.53k    63.27%
  Latency Distribution
     50%    4.54ms
     75%    8.06ms
     90%   21.22ms
     99%  149.65ms
  43629 requests in 5.03s, 6.91MB read
Requests/sec:   8673.32
Transfer/sec:      1.37MB
"""

# The same run's shape with microsecond and second latencies and failures, as wrk
# prints them (it still exits 0).
WRK_WITH_ERRORS = """\
Running 2s test @ http://198.18.0.1:8081/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   900.12us    1.10ms   1.20s    95.00%
    Req/Sec    20.01k     1.00k   22.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    1.01ms
     90%    1.50ms
     99%    1.20s
  40000 requests in 2.00s, 6.00MB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:  19999.50
Transfer/sec:      3.00MB
"""


def test_parse_wrk_reads_rate_latencies_and_count() -> None:
    result = ab.parse_wrk(WRK_OUTPUT)
    assert result.requests_per_s == pytest.approx(8673.32)
    assert result.p50_ms == pytest.approx(4.54)
    assert result.p99_ms == pytest.approx(149.65)
    assert result.requests == 43629
    assert result.errors == 0


def test_parse_wrk_converts_units_and_counts_every_error() -> None:
    result = ab.parse_wrk(WRK_WITH_ERRORS)
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(1200.0)
    assert result.errors == 1 + 2 + 3 + 4 + 5


def test_parse_wrk_refuses_output_without_the_latency_table() -> None:
    without = "\n".join(line for line in WRK_OUTPUT.splitlines() if "%" not in line)
    with pytest.raises(ValueError, match="50%"):
        ab.parse_wrk(without)
    with pytest.raises(ValueError):
        ab.duration_ms("12 ms")


def samples(
    kernel: list[float], aiotcp: list[float]
) -> dict[str, dict[str, list[dict[str, float]]]]:
    return {
        "asyncio": {
            "kernel": [{"req_per_s": v} for v in kernel],
            "aiotcp": [{"req_per_s": v} for v in aiotcp],
        }
    }


def test_ratio_is_the_median_of_each_rounds_own_ratio() -> None:
    # Rounds 1000/900, 2000/1000, 4000/3800: ratios 0.9, 0.5, 0.95 -> median 0.9; the
    # ratio of the medians (1000/2000 = 0.5) would let one slow phase decide it.
    summary = ab.summarize(samples([1000, 2000, 4000], [900, 1000, 3800]))
    assert summary["results"]["asyncio"]["kernel"]["req_per_s"] == 2000
    assert summary["results"]["asyncio"]["aiotcp"]["req_per_s"] == 1000
    assert summary["ratios"]["asyncio"]["req_per_s"] == pytest.approx(0.9)
    assert summary["spread"]["asyncio"]["req_per_s"] == pytest.approx([0.5, 0.95])


def test_table_and_goal_lines() -> None:
    summary = ab.summarize(samples([1000, 1000], [700, 750]))
    text = ab.table("http", summary)
    row = next(line for line in text.splitlines() if line.startswith("req/s"))
    assert row.split() == ["req/s", "asyncio", "1000.0", "725.0", "0.72", "0.70-0.75"]
    assert ab.goal_lines("http", summary) == ["goal req_per_s asyncio: 0.72 >= 0.8 BELOW"]
    summary = ab.summarize(samples([1000], [800]))
    assert ab.goal_lines("http", summary)[0].endswith("met")


def test_transfer_line() -> None:
    t = ab.parse_transfer("received 64000000 0.080000 0.160000")
    assert t.mbps == pytest.approx(400.0)
    assert t.cpu_us_per_mib == pytest.approx(0.08e6 / (64e6 / (1 << 20)))


def test_commands_say_which_stack_and_loop() -> None:
    hello = ab.HELLO
    assert ab.app_command(hello, ["8080"], "kernel", "asyncio") == [
        sys.executable,
        str(hello),
        "8080",
    ]
    assert ab.app_command(hello, ["8080"], "kernel", "uvloop")[-1] == "uvloop"
    aiotcp = ab.app_command(hello, ["8080"], "aiotcp", "uvloop")
    assert aiotcp[1:6] == ["-m", "aiotcp", "run", "--loop", "uvloop"]
    assert aiotcp[-1] == "8080"  # the program does not install uvloop itself
    assert ab.pinned(["wrk"], 0) == ["taskset", "-c", "0", "wrk"]
    assert ab.pinned(["wrk"], None) == ["wrk"]


def test_ready_line_must_match_the_label() -> None:
    line = "ready uvloop.Loop aiotcp compiled"
    assert ab.check_ready(line, "aiotcp", "uvloop") == "compiled"
    assert (
        ab.check_ready("ready asyncio.x._UnixSelectorEventLoop kernel", "kernel", "asyncio") is None
    )
    with pytest.raises(RuntimeError, match="measuring kernel"):
        ab.check_ready(line, "kernel", "uvloop")
    with pytest.raises(RuntimeError, match="measuring aiotcp on asyncio"):
        ab.check_ready(line, "aiotcp", "asyncio")


def test_options() -> None:
    args = ab.build_parser().parse_args([])
    assert (args.rounds, args.seconds, args.connections, args.mbytes) == (3, 5, 50, 64)
    assert args.only is None and args.json is None and args.pin
    args = ab.build_parser().parse_args(["--only", "tls", "--mbytes", "8", "--no-pin"])
    assert (args.only, args.mbytes, args.pin) == ("tls", 8, False)
    for bad in (["--rounds", "0"], ["--only", "udp"]):
        with pytest.raises(SystemExit):
            ab.build_parser().parse_args(bad)


def test_help_runs() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "aiohttp_bench.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--connections" in proc.stdout and "--only" in proc.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_tls_app_serves_and_fetches_over_the_kernel(tmp_path: pathlib.Path) -> None:
    """The protocol both sides speak: the asyncio server to the blocking client, and
    the asyncio client from the blocking server, each line counting every byte."""
    ab.write_certificates(tmp_path, ["127.0.0.1"])
    app = str(ab.TLS_BULK)
    size, warmup = "300000", "70000"  # not a multiple of the 64 KiB writes
    for server_mode, client_mode, label in (
        ("serve", "peer-fetch", "sent"),
        ("peer-serve", "fetch", None),
    ):
        port = str(free_port())
        server = subprocess.Popen(
            [sys.executable, app, server_mode, port, str(tmp_path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().startswith("ready")
            client = subprocess.run(
                [sys.executable, app, client_mode, "127.0.0.1", port, str(tmp_path), size, warmup],
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert client.returncode == 0, client.stderr
            got = ab.transfers(client.stdout, "received")
            assert [t.nbytes for t in got] == [300000]
            assert [t.nbytes for t in ab.transfers(client.stdout, "warmup")] == [70000]
            if label is not None:
                lines = [server.stdout.readline() for _ in range(2)]
                assert [ab.parse_transfer(line).nbytes for line in lines] == [70000, 300000]
        finally:
            server.terminate()
            server.wait(timeout=10)
