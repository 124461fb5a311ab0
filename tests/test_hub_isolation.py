"""A stalled subscriber and other tenants: neither may touch anyone else."""

import asyncio
import socket
from pathlib import Path

import orjson

from client import KaizenClient, NotFoundError
from server.runner import KaizenServer
from server.web.context import SERVICES
from tests.conftest import eventually, running
from tests.hubkit import handshake, masked, raw_peer


async def stalled_subscriber(url: str, channel: str) -> socket.socket:
    """A WebSocket peer with a tiny receive buffer that subscribes, then never reads."""
    sock = handshake(url)
    payload = orjson.dumps({"id": "s", "op": "subscribe", "channel": channel})
    sock.sendall(masked(payload))
    return sock


async def test_a_stalled_subscriber_is_cut_off_without_slowing_the_others(data_dir: Path) -> None:
    small = {"hub_outbox_bytes": 1 << 20, "hub_max_drops": 50}
    async with running(data_dir, **small) as server, raw_peer(server.url) as fast:
        services = server.app[SERVICES]
        stalled = await stalled_subscriber(server.url, "general")
        await eventually(lambda: _subscriptions(server, 1))
        await fast.call("subscribe", channel="general")
        count = 600
        reading = asyncio.create_task(fast.pushes(count))
        async with KaizenClient(server.url) as publisher:
            for n in range(count):
                await publisher.broadcast_discovery(f"m{n}", "x" * 16000)
        got = await reading
        assert [p["data"]["title"] for p in got] == [f"m{n}" for n in range(count)]
        assert max(len(c.peer.outbox) for c in services.sockets) <= small["hub_outbox_bytes"]
        await eventually(lambda: _slow_closed(server))
        assert services.hub.stats("default").dropped > 0
        stalled.close()


async def _subscriptions(server: KaizenServer, count: int) -> bool:
    return server.app[SERVICES].hub.stats("default").subscriptions >= count


async def _slow_closed(server: KaizenServer) -> bool:
    return server.app[SERVICES].hub.stats("default").slow_closed == 1


async def test_tenants_share_nothing(tenants: tuple[KaizenServer, str, str]) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        await a.create_channel("acme.secret")
        async with b.subscribe("general") as b_general, b.subscribe(">") as b_all:
            secret = await a.share_knowledge(
                knowledge_type="SOLUTION", title="ours", channel="acme.secret"
            )
            await a.broadcast_discovery("acme only")
            mine = await b.broadcast_discovery("globex only")
            assert (await b_general.get()).data.id == mine.id
            assert (await b_all.get()).data.id == mine.id
        assert "acme.secret" not in {c.name for c in await b.channels()}
        for attempt in (
            b.get_knowledge(secret.id),
            b.vote_useful(secret.id),
            b.mark_as_applied(secret.id),
            b.query_knowledge(channel="acme.secret"),
            b.subscribe("acme.secret").start(),
        ):
            try:
                await attempt
            except NotFoundError:
                continue
            raise AssertionError("another tenant's knowledge was reachable")
        assert [k.title for k in (await b.query_knowledge("acme ours")).items] == []
        assert (await a.get_knowledge(secret.id)).votes == 0


async def test_subscriptions_end_when_the_client_closes(server: KaizenServer) -> None:
    kz = KaizenClient(server.url)
    sub = kz.subscribe("general")
    await sub.start()
    await kz.close()
    assert [p async for p in sub] == []
    await asyncio.sleep(0)
