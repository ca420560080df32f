"""Fixtures for packet-level tests: the event loop kind each interop test runs on."""

from __future__ import annotations

import pytest

from aiotcp.testing.loops import LOOP_KINDS, LoopKind


@pytest.fixture(params=LOOP_KINDS)
def loop_kind(request: pytest.FixtureRequest) -> LoopKind:
    """Every interop scenario runs on asyncio's default loop and on uvloop."""
    return request.param  # type: ignore[no-any-return]
