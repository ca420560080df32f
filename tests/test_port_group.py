"""A reuse_port group's membership, without root: members in one process, each on
its own unix sockets, agree on who owns which buckets whatever the order they come
and go in (``aiotcp.port_group``)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from aiotcp.io.flow_share import BUCKETS, FlowShare
from aiotcp.port_group import MAX_SLOTS, PortGroup


def port() -> int:
    """A port nobody else's test uses (groups are named by user and port)."""
    return random.randrange(20000, 60000)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def owners(groups: list[PortGroup]) -> list[int]:
    """How many members admit a SYN of each bucket."""
    return [sum(g.share.admits(b, syn_only=True) for g in groups) for b in range(BUCKETS)]


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), 10))


def test_members_split_the_buckets_and_a_leaver_hands_its_share_over() -> None:
    async def main() -> None:
        loop, p = asyncio.get_running_loop(), port()
        changes: list[int] = []
        first = PortGroup(loop, p, lambda: changes.append(1))
        assert first.share == FlowShare(syn=((0, 255),))
        second = PortGroup(loop, p, lambda: None)
        third = PortGroup(loop, p, lambda: None)
        await settle()
        groups = [first, second, third]
        assert [g.slot for g in groups] == [0, 1, 2]
        assert all(g.members() == [0, 1, 2] for g in groups)
        assert owners(groups) == [1] * BUCKETS
        assert changes, "the first member's filter was not told"
        second.close()
        await settle()
        assert first.members() == third.members() == [0, 2]
        assert owners([first, third]) == [1] * BUCKETS
        again = PortGroup(loop, p, lambda: None)  # takes the free slot
        await settle()
        assert again.slot == 1 and owners([first, again, third]) == [1] * BUCKETS
        for g in (first, again, third):
            g.close()

    run(main)


def test_a_newcomer_takes_its_share_only_after_the_others_gave_it_up() -> None:
    """While a member joins, a bucket may have no owner for a moment, never two."""

    async def main() -> None:
        loop, p = asyncio.get_running_loop(), port()
        first = PortGroup(loop, p, lambda: None)
        second = PortGroup(loop, p, lambda: None)
        assert second.share.syn == ()  # the first has not answered yet
        assert max(owners([first, second])) == 1
        for _ in range(5):
            await asyncio.sleep(0)
            assert max(owners([first, second])) == 1
        assert owners([first, second]) == [1] * BUCKETS
        first.close()
        second.close()

    run(main)


def test_a_member_keeps_the_buckets_of_its_connections_and_peers_hold_their_rsts() -> None:
    async def main() -> None:
        loop, p = asyncio.get_running_loop(), port()
        first = PortGroup(loop, p, lambda: None)
        first.flow_added(200)
        first.flow_added(3)
        assert first.may_reset(200) and first.share.keep == ()
        second = PortGroup(loop, p, lambda: None)
        await settle()
        assert second.share.syn == ((128, 255),)
        assert first.share.keep == ((200, 200),)  # moved to the newcomer, still in use
        assert first.share.admits(200, syn_only=False)
        assert not first.share.admits(200, syn_only=True)
        assert not second.may_reset(200), "a segment of the first's connection"
        assert second.may_reset(201) and not second.may_reset(3)
        first.flow_removed(200)
        await settle()
        assert first.share.keep == () and second.may_reset(200)
        first.close()
        second.close()

    run(main)


def test_a_member_that_stops_listening_gets_no_new_flows_but_keeps_its_own() -> None:
    async def main() -> None:
        loop, p = asyncio.get_running_loop(), port()
        first = PortGroup(loop, p, lambda: None)
        second = PortGroup(loop, p, lambda: None)
        await settle()
        first.flow_added(5)
        first.stop_listening()
        await settle()
        assert second.members() == [1] and second.share.syn == ((0, 255),)
        assert first.share == FlowShare(syn=(), keep=((5, 5),))
        assert not second.may_reset(5) and second.may_reset(6)
        first.close()
        await settle()
        assert second.may_reset(5)
        second.close()

    run(main)


def test_slots_are_bounded() -> None:
    async def main() -> None:
        loop, p = asyncio.get_running_loop(), port()
        groups = [PortGroup(loop, p, lambda: None) for _ in range(MAX_SLOTS)]
        try:
            PortGroup(loop, p, lambda: None)
        except OSError as exc:
            assert "share" in str(exc)
        else:
            raise AssertionError("a member past MAX_SLOTS")
        finally:
            for g in groups:
                g.close()

    run(main)
