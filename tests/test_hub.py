"""The knowledge hub end to end: publish, deliver in order, filter, recover."""

import asyncio
from pathlib import Path

from client import KaizenClient, PushFrame
from server.runner import KaizenServer
from server.web.context import SERVICES
from tests.conftest import running
from tests.hubkit import draft, raw_peer


async def test_every_tenant_has_the_default_channels(kz: KaizenClient) -> None:
    names = {c.name for c in await kz.channels()}
    assert {
        "general",
        "solutions",
        "warnings",
        "optimizations",
        "code",
        "testing",
        "debugging",
        "jobs",
        "models",
    } <= names


async def test_published_messages_arrive_in_offset_order(kz: KaizenClient) -> None:
    async with kz.subscribe("general") as sub:
        acks = [await kz.broadcast_discovery(f"finding {n}") for n in range(20)]
        got = [await sub.get() for _ in range(20)]
    assert [a.offset for a in acks] == list(range(1, 21))
    assert [p.offset for p in got] == [a.offset for a in acks]
    assert [p.data.title for p in got] == [f"finding {n}" for n in range(20)]
    assert all(p.data.priority == "HIGH" and p.data.knowledge_type == "DISCOVERY" for p in got)


async def test_the_type_picks_the_channel_when_none_is_named(kz: KaizenClient) -> None:
    solution = await kz.share_solution("slow sort", "use timsort", {"lang": "python"})
    warning = await kz.share_knowledge(knowledge_type="WARNING", title="sanitize input")
    tip = await kz.share_knowledge(knowledge_type="BEST_PRACTICE", title="pin versions")
    assert (solution.channel, warning.channel, tip.channel) == ("solutions", "warnings", "general")
    stored = await kz.get_knowledge(solution.id)
    assert (stored.title, stored.content, stored.context) == (
        "slow sort",
        "use timsort",
        {"lang": "python"},
    )


async def test_filters_by_priority_and_type(kz: KaizenClient) -> None:
    async with kz.subscribe("general", min_priority="HIGH", types=["WARNING"]) as sub:
        for priority in ("LOW", "CRITICAL"):
            for kind in ("WARNING", "SOLUTION"):
                await kz.share_knowledge(
                    knowledge_type=kind,
                    title=f"{kind} {priority}",
                    priority=priority,
                    channel="general",
                )
        await kz.share_knowledge(
            knowledge_type="WARNING", title="last", priority="HIGH", channel="general"
        )
        got = [await sub.get(), await sub.get()]
    assert [p.data.title for p in got] == ["WARNING CRITICAL", "last"]


async def test_wildcard_subscription_covers_channels_made_later(kz: KaizenClient) -> None:
    async with kz.subscribe("code.*") as sub:
        await kz.create_channel("code.python")
        await kz.create_channel("code.python.tests")
        await kz.share_knowledge(
            knowledge_type="PATTERN", title="deep", channel="code.python.tests"
        )
        await kz.share_knowledge(knowledge_type="PATTERN", title="one level", channel="code.python")
        push = await sub.get()
    assert (push.channel, push.data.title) == ("code.python", "one level")


async def test_callbacks_receive_pushes_in_order(kz: KaizenClient) -> None:
    seen: list[int] = []
    done = asyncio.Event()

    async def on_message(push: PushFrame) -> None:
        seen.append(push.offset)
        if len(seen) == 5:
            done.set()

    reply = await kz.subscribe("testing", on_message=on_message).start()
    assert reply.recovered
    for n in range(5):
        await kz.share_knowledge(knowledge_type="PATTERN", title=f"t{n}", channel="testing")
    await asyncio.wait_for(done.wait(), 10)
    assert seen == [1, 2, 3, 4, 5]


async def test_recovery_replays_the_gap_then_goes_live(server: KaizenServer) -> None:
    async with raw_peer(server.url) as first:
        reply = await first.call("subscribe", channel="general")
        epoch = reply["data"]["positions"]["general"]["epoch"]
        for n in range(3):
            await first.call("publish", message=draft(f"seen {n}"))
        seen = await first.pushes(3)
    last = seen[-1]["offset"]
    async with raw_peer(server.url) as publisher:
        for n in range(5):
            await publisher.call("publish", message=draft(f"missed {n}"))
        async with raw_peer(server.url) as again:
            since = {"general": {"offset": last, "epoch": epoch}}
            reply = await again.call("subscribe", channel="general", since=since)
            assert reply["data"]["recovered"] is True and reply["data"]["replaying"] == 5
            await publisher.call("publish", message=draft("live"))
            got = await again.pushes(6)
    assert [p["offset"] for p in got] == list(range(last + 1, last + 7))
    assert [p["data"]["title"] for p in got][-1] == "live"


async def test_sdk_recovers_after_a_forced_disconnect(
    kz: KaizenClient, server: KaizenServer
) -> None:
    async with KaizenClient(server.url) as listener:
        async with listener.subscribe("solutions") as sub:
            for n in range(10):
                await kz.share_solution(f"p{n}", "s")
            assert [(await sub.get()).offset for _ in range(10)] == list(range(1, 11))
            ws = listener.socket._ws
            assert ws is not None
            await ws.close()
            for n in range(10, 30):
                await kz.share_solution(f"p{n}", "s")
            got = [(await sub.get()).offset for _ in range(20)]
            assert listener.socket.connects >= 2
    assert got == list(range(11, 31))
    assert sub.lost == []


async def test_recovery_fails_when_retention_dropped_the_offset(data_dir: Path) -> None:
    async with running(data_dir, hub_history_size=5) as server, raw_peer(server.url) as peer:
        first = await peer.call("publish", message=draft("zero"))
        for n in range(10):
            await peer.call("publish", message=draft(f"n{n}"))
        since = {"general": {"offset": first["data"]["offset"], "epoch": first["data"]["epoch"]}}
        reply = await peer.call("subscribe", channel="general", since=since)
        assert reply["data"]["recovered"] is False
        assert reply["data"]["lost"] == ["general"]
        await peer.call("publish", message=draft("after"))
        (live,) = await peer.pushes(1)
        assert live["data"]["title"] == "after"


async def test_a_recreated_channel_has_a_new_epoch_and_recovery_says_so(
    kz: KaizenClient, server: KaizenServer
) -> None:
    old = await kz.create_channel("team.alpha")
    await kz.share_knowledge(knowledge_type="PATTERN", title="x", channel="team.alpha")
    await kz.delete_channel("team.alpha")
    new = await kz.create_channel("team.alpha")
    assert new.epoch != old.epoch and new.offset == 0
    async with raw_peer(server.url) as peer:
        since = {"team.alpha": {"offset": 1, "epoch": old.epoch}}
        reply = await peer.call("subscribe", channel="team.alpha", since=since)
    assert reply["data"]["recovered"] is False


async def test_history_and_offsets_survive_a_restart(data_dir: Path) -> None:
    async with running(data_dir) as server, KaizenClient(server.url) as kz:
        acks = [await kz.broadcast_discovery(f"d{n}") for n in range(3)]
    async with running(data_dir) as server, KaizenClient(server.url) as kz:
        general = next(c for c in await kz.channels() if c.name == "general")
        assert (general.epoch, general.offset) == (acks[0].epoch, 3)
        assert (await kz.broadcast_discovery("after restart")).offset == 4
        async with raw_peer(server.url) as peer:
            since = {"general": {"offset": 1, "epoch": general.epoch}}
            reply = await peer.call("subscribe", channel="general", since=since)
            got = await peer.pushes(3)
    assert reply["data"]["recovered"] is True
    assert [p["data"]["title"] for p in got] == ["d1", "d2", "after restart"]


async def test_offsets_keep_growing_after_history_is_pruned(data_dir: Path) -> None:
    async with running(data_dir, hub_history_size=2) as server, KaizenClient(server.url) as kz:
        for n in range(5):
            await kz.broadcast_discovery(f"d{n}")
        await server.app[SERVICES].hub.prune()
        page = await kz.query_knowledge(channel="general")
        assert [k.offset for k in page.items] == [5, 4]
    async with running(data_dir, hub_history_size=2) as server, KaizenClient(server.url) as kz:
        assert (await kz.broadcast_discovery("next")).offset == 6
