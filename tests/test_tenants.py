"""Tokens scope every read and write to one tenant."""

from pathlib import Path

import aiohttp
import pytest

from client import (
    AuthenticationError,
    Interaction,
    KaizenClient,
    NotFoundError,
    PermissionDeniedError,
)
from schemas import LearningsQuery
from server.core.errors import ConfigError
from server.runner import KaizenServer
from tests.conftest import eventually, interaction, running, settings_for

Tenants = tuple[KaizenServer, str, str]


async def test_tenant_a_never_sees_tenant_b(tenants: Tenants) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        ids = await a.record_interactions([Interaction(**interaction()) for _ in range(3)])
        await eventually(a.get_relevant_learnings)
        learning = (await a.get_relevant_learnings())[0]
        with pytest.raises(NotFoundError):
            await b.get_interaction(ids[0])
        with pytest.raises(NotFoundError):
            await b.get_learning(learning.id)
        assert (await b.list_interactions()).items == []
        assert await b.get_relevant_learnings() == []
        assert (await b.stats()).counts.interactions == 0
        assert (await a.stats()).counts.interactions == 3
        assert await b.socket.learnings(_query()) == await b.learnings()
        assert (await b.socket.learnings(_query())).items == []


def _query() -> LearningsQuery:
    return LearningsQuery()


async def test_same_tasks_in_two_tenants_mine_separately(tenants: Tenants) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        await a.record_interactions([Interaction(**interaction()) for _ in range(3)])
        await b.record_interactions([Interaction(**interaction()) for _ in range(4)])
        learned_a = await eventually(a.get_relevant_learnings)
        learned_b = await eventually(b.get_relevant_learnings)
        assert (learned_a[0].support, learned_b[0].support) == (3, 4)


@pytest.mark.parametrize("token", [None, "", "kz_nope_nope", "Basic abc"])
async def test_missing_or_unknown_tokens_are_refused(tenants: Tenants, token: str | None) -> None:
    server, _, _ = tenants
    async with KaizenClient(server.url, token=token) as kz:
        with pytest.raises(AuthenticationError) as refused:
            await kz.stats()
        assert refused.value.status == 401 and refused.value.code == "unauthorized"
        assert (await kz.health()).status == "ok"


async def test_a_revoked_token_is_refused_at_once(tenants: Tenants) -> None:
    server, token_a, _ = tenants
    async with KaizenClient(server.url, token=token_a) as admin:
        spare = await admin.create_token("spare-agent")
        assert spare.tenant == "acme"
        async with KaizenClient(server.url, token=spare.token) as kz:
            await kz.stats()
            await admin.revoke_token(spare.id)
            with pytest.raises(AuthenticationError):
                await kz.stats()
        listed = {t.id: t for t in (await admin.list_tokens()).items}
        assert listed[spare.id].revoked_at is not None


async def test_another_tenants_token_cannot_be_revoked(tenants: Tenants) -> None:
    server, token_a, token_b = tenants
    async with (
        KaizenClient(server.url, token=token_a) as a,
        KaizenClient(server.url, token=token_b) as b,
    ):
        b_ids = [t.id for t in (await b.list_tokens()).items]
        with pytest.raises(NotFoundError):
            await a.revoke_token(b_ids[0])
        await b.stats()


async def test_a_token_cannot_mint_for_another_tenant(tenants: Tenants) -> None:
    server, token_a, _ = tenants
    async with KaizenClient(server.url, token=token_a) as a:
        with pytest.raises(PermissionDeniedError):
            await a.create_token("intruder", tenant="globex")


async def test_websocket_needs_a_valid_token(tenants: Tenants) -> None:
    server, token_a, _ = tenants
    async with KaizenClient(server.url, token="kz_bad_bad") as bad:
        with pytest.raises(AuthenticationError):
            await bad.socket.ping()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{server.url}/ws?token={token_a}") as ws,
    ):
        hello = await ws.receive_json()
        assert hello["tenant"] == "acme" and hello["agent"] == "coder"


async def test_open_server_refuses_a_public_address(data_dir: Path) -> None:
    server = KaizenServer(settings_for(data_dir, host="0.0.0.0"))
    with pytest.raises(ConfigError, match="without tokens"):
        await server.start()
    await server.stop()


async def test_the_first_token_closes_an_open_server(
    kz: KaizenClient, server: KaizenServer
) -> None:
    created = await kz.create_token("first", tenant="acme")
    with pytest.raises(AuthenticationError):
        await kz.stats()
    async with KaizenClient(server.url, token=created.token) as owner:
        assert (await owner.stats()).tenant == "acme"


async def test_an_open_server_honours_tokens_the_cli_creates(data_dir: Path) -> None:
    from tests.conftest import make_tokens

    async with running(data_dir, token_cache_ttl_s=0) as server:
        async with KaizenClient(server.url) as anonymous:
            assert (await anonymous.stats()).tenant == "default"
            (token,) = await make_tokens(data_dir, ("acme", "late"))
            async with KaizenClient(server.url, token=token) as kz:
                assert (await kz.stats()).tenant == "acme"
            with pytest.raises(AuthenticationError):
                await anonymous.stats()


async def test_an_open_server_refuses_an_unknown_token(
    kz: KaizenClient, server: KaizenServer
) -> None:
    async with KaizenClient(server.url, token="kz_nope_nope") as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.stats()
    assert (await kz.stats()).tenant == "default"


async def test_revoking_a_token_closes_its_open_sockets(tenants: Tenants) -> None:
    server, token_a, _ = tenants
    async with KaizenClient(server.url, token=token_a) as admin:
        spare = await admin.create_token("socket-agent")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{server.url}/ws?token={spare.token}") as ws:
                await ws.receive_json()
                await admin.revoke_token(spare.id)
                closing = await ws.receive()
                assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 1008)
            async with session.ws_connect(f"{server.url}/ws?token={token_a}") as other:
                assert (await other.receive_json())["type"] == "hello"
