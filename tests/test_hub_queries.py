"""Knowledge queries, engagement and popularity."""

from client import KaizenClient


async def test_lexical_search_ranks_the_better_match_first(kz: KaizenClient) -> None:
    await kz.share_knowledge(
        knowledge_type="SOLUTION", title="Caching HTTP responses", content="etag"
    )
    best = await kz.share_knowledge(
        knowledge_type="SOLUTION", title="Fast sorting algorithm", content="quicksort sorting"
    )
    await kz.share_knowledge(knowledge_type="SOLUTION", title="Sorting hats", content="wizards")
    page = await kz.query_knowledge("sorting algorithm")
    assert page.items[0].id == best.id
    assert all("ort" in (k.title + k.content).lower() for k in page.items)
    assert len(page.items) == 2


async def test_filters_combine(kz: KaizenClient) -> None:
    await kz.create_channel("code.python")
    await kz.share_knowledge(
        knowledge_type="WARNING",
        title="a",
        priority="HIGH",
        tags=["py", "io"],
        channel="code.python",
    )
    await kz.share_knowledge(
        knowledge_type="WARNING", title="b", priority="LOW", tags=["py"], channel="code.python"
    )
    await kz.share_knowledge(
        knowledge_type="SOLUTION", title="c", priority="HIGH", tags=["py"], channel="code"
    )
    assert [k.title for k in (await kz.query_knowledge(tags=["py", "io"])).items] == ["a"]
    assert [k.title for k in (await kz.query_knowledge(min_priority="HIGH")).items] == ["c", "a"]
    assert [k.title for k in (await kz.query_knowledge(type="WARNING")).items] == ["b", "a"]
    assert [k.title for k in (await kz.query_knowledge(channel="code.*")).items] == ["b", "a"]
    assert [k.title for k in (await kz.query_knowledge(channel="code")).items] == ["c"]


async def test_pages_cover_everything_once(kz: KaizenClient) -> None:
    ids = [(await kz.broadcast_discovery(f"d{n}")).id for n in range(7)]
    seen: list[int] = []
    cursor = None
    while True:
        page = await kz.query_knowledge(limit=3, cursor=cursor)
        seen += [k.id for k in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(ids, reverse=True)
    ranked: list[int] = []
    cursor = None
    while True:
        page = await kz.query_knowledge("d0 d1 d2 d3 d4 d5 d6", limit=2, cursor=cursor)
        ranked += [k.id for k in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(ranked) == sorted(ids)


async def test_votes_count_once_per_agent_and_applications_every_time(kz: KaizenClient) -> None:
    k = await kz.share_solution("p", "s")
    assert (await kz.vote_useful(k.id, agent="a")).counted
    again = await kz.vote_useful(k.id, agent="a")
    assert (again.counted, again.votes) == (False, 1)
    assert (await kz.vote_useful(k.id, agent="b")).votes == 2
    await kz.mark_as_applied(k.id, agent="a")
    assert (await kz.mark_as_applied(k.id, agent="a")).applications == 2
    first = await kz.get_knowledge(k.id)
    second = await kz.get_knowledge(k.id)
    assert (first.views, second.views) == (1, 2)
    assert second.popularity == 2 + 2 * 2


async def test_popular_orders_by_votes_plus_twice_applications(kz: KaizenClient) -> None:
    voted = await kz.share_solution("voted thrice", "s")
    applied = await kz.share_solution("applied twice", "s")
    await kz.share_solution("ignored", "s")
    for agent in "abc":
        await kz.vote_useful(voted.id, agent=agent)
    for _ in range(2):
        await kz.mark_as_applied(applied.id)
    popular = await kz.get_popular_knowledge()
    assert [(k.id, k.popularity) for k in popular] == [(applied.id, 4.0), (voted.id, 3.0)]
    assert await kz.get_popular_knowledge(channel="general") == []
