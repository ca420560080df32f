"""Each example runs as a user would run it, inside the test namespaces."""

from __future__ import annotations

import hashlib
import pathlib
import subprocess
import sys

from aiotcp.testing.netns import Host, kernel_echo_server, pattern, read_line, wait_listening

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def test_syn_probe_reports_open_and_closed_ports(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    with kernel_echo_server(b, 7):
        out = a.run(
            [sys.executable, str(EXAMPLES / "syn_probe.py"), b.address_of(family), "7", "9"]
        ).stdout
    lines = out.splitlines()
    assert lines[0].startswith(f"{b.address_of(family)}:7 open (SYN-ACK")
    assert lines[1] == f"{b.address_of(family)}:9 closed (RST)"


WILDCARD = {"ipv4": "0.0.0.0", "ipv6": "::"}


def url_host(host: Host, family: str) -> str:
    """The host's address as a URL has it (IPv6 in brackets, RFC 3986)."""
    address = host.address_of(family)
    return f"[{address}]" if ":" in address else address


def example(host: Host, name: str, *args: str) -> subprocess.Popen[str]:
    return host.python(
        [str(EXAMPLES / name), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_echo_server_and_client_both_on_aiotcp(
    family_hosts: tuple[Host, Host], family: str
) -> None:
    a, b = family_hosts
    server = example(a, "echo_server.py", "--port", "7000", "--clients", "1")
    assert read_line(server.stdout, 20).startswith("listening on")
    out = b.run(
        [
            sys.executable,
            str(EXAMPLES / "echo_client.py"),
            a.address_of(family),
            "7000",
            "hi",
            "there",
        ]
    )
    assert "echo: hi\necho: there\n" in out.stdout
    assert "server closed (extra bytes: 0)" in out.stdout
    stdout, _ = server.communicate(timeout=20)
    assert server.returncode == 0
    assert "echoed 9 bytes" in stdout


def test_curl_against_the_http_server_example(family_hosts: tuple[Host, Host], family: str) -> None:
    a, b = family_hosts
    server = example(a, "http_server.py", "--port", "8080", "--requests", "2")
    assert read_line(server.stdout, 20).startswith("serving HTTP")
    hello = b.run(["curl", "-sS", "--max-time", "20", f"http://{url_host(a, family)}:8080/"]).stdout
    assert hello.startswith("Hello from aiotcp")
    blob = b.run(
        ["curl", "-sS", "--max-time", "20", f"http://{url_host(a, family)}:8080/bytes/500000"],
        text=False,
    ).stdout
    assert blob == pattern(500000)
    server.communicate(timeout=20)
    assert server.returncode == 0


def test_http_client_example_fetches_from_python_http_server(
    family_hosts: tuple[Host, Host], family: str, tmp_path: pathlib.Path
) -> None:
    a, b = family_hosts
    data = pattern(1_000_000, seed=5)
    (tmp_path / "file.bin").write_bytes(data)
    http = b.python(
        # Every address: ``--bind ::`` is python's dual-stack server (IPV6_V6ONLY off).
        ["-m", "http.server", "8000", "--bind", WILDCARD[family], "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_listening(b, 8000)
    out = a.run(
        [
            sys.executable,
            str(EXAMPLES / "http_client.py"),
            f"http://{url_host(b, family)}:8000/file.bin",
        ]
    ).stdout
    http.kill()
    assert out.splitlines()[0].endswith("200 OK")
    assert f"1000000 bytes sha256={hashlib.sha256(data).hexdigest()}" in out
