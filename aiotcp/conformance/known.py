"""Scripts that Linux passes and aiotcp fails today: aiotcp bugs, with the evidence.

Each stays in the suite asserting the right behaviour; the test marks it
``xfail(strict=True)`` and the CLI reports it as a known bug, so a fix shows up at
once (as an unexpected pass) and the entry must then go.
"""

from __future__ import annotations

AIOTCP_KNOWN_BUGS: dict[str, str] = {}
