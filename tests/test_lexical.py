"""Which query terms the BM25 search reads (`server.learning.lexical`)."""

from hypothesis import given
from hypothesis import strategies as st

from server.core.text import fts_query, query_terms
from server.learning.lexical import DocumentFrequencies

counts = st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), st.integers(0, 500))


@given(counts, st.integers(0, 2_000))
def test_the_rarest_terms_are_taken_while_their_counts_fit_the_budget(
    known: dict[str, int], budget: int
) -> None:
    frequencies = DocumentFrequencies(ttl_s=60.0)
    frequencies.learn(list(known), list(known.values()), now=0.0)
    chosen = frequencies.rarest(known, budget)
    assert sum(known[w] for w in chosen) <= budget
    assert all(known[w] > 0 for w in chosen)
    left = sorted(known[w] for w in known if w not in chosen and known[w] > 0)
    if chosen and left:
        assert max(known[w] for w in chosen) <= left[0]  # rarest first
    if left:
        assert sum(known[w] for w in chosen) + left[0] > budget  # stopped only when full


def test_counts_are_asked_again_once_stale() -> None:
    frequencies = DocumentFrequencies(ttl_s=10.0)
    frequencies.learn(["deploy", "kubernetes"], [5, 7], now=0.0)
    assert frequencies.missing(["deploy", "kubernetes", "rust"], now=5.0) == ["rust"]
    assert frequencies.missing(["deploy"], now=11.0) == ["deploy"]


def test_the_least_recently_used_count_is_forgotten_first() -> None:
    frequencies = DocumentFrequencies(ttl_s=60.0, size=2)
    frequencies.learn(["deploy", "kubernetes"], [5, 7], now=0.0)
    assert frequencies.missing(["deploy"], now=1.0) == []  # kubernetes is now the oldest used
    frequencies.learn(["rust"], [1], now=2.0)
    assert frequencies.missing(["deploy", "kubernetes", "rust"], now=3.0) == ["kubernetes"]


def test_a_small_store_searches_every_term() -> None:
    frequencies = DocumentFrequencies(ttl_s=60.0)
    words = query_terms("Deploy the API to staging with Kubernetes")
    frequencies.learn(words, [3] * len(words), now=0.0)
    assert (
        fts_query(frequencies.rarest(words, 3_000))
        == '"api" OR "deploy" OR "kubernete" OR "staging"'
    )
