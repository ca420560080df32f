"""README's two commands stay true: CI runs exactly the test command it shows."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def sh_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S)]


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    install_and_demo, test_command = sh_blocks(readme)[:2]
    assert install_and_demo == "bash .ci/setup && .venv/bin/python -m aiotcp demo"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert ci[-1] == test_command
    assert "bash .ci/setup" in ci
