"""Terms and the lexical similarities built on them."""

from hypothesis import given
from hypothesis import strategies as st

from server.core.text import cosine, jaccard, terms

words = st.frozensets(st.text("abcdefgh", min_size=1, max_size=6), max_size=12)


def test_terms_drop_stopwords_case_and_plurals() -> None:
    assert terms("Create the Python unit TESTS for a class") == {
        "create",
        "python",
        "unit",
        "test",
        "class",
    }


@given(st.text(max_size=300))
def test_terms_never_fail_and_are_lower_case(text: str) -> None:
    assert all(t == t.lower() and t for t in terms(text))


@given(words, words)
def test_similarities_are_symmetric_and_bounded(a: frozenset[str], b: frozenset[str]) -> None:
    for sim in (jaccard, cosine):
        assert sim(a, b) == sim(b, a)
        assert 0.0 <= sim(a, b) <= 1.0 + 1e-12


@given(words)
def test_a_set_is_fully_similar_to_itself(a: frozenset[str]) -> None:
    expected = 1.0 if a else 0.0
    assert jaccard(a, a) == expected
    assert abs(cosine(a, a) - expected) < 1e-12


@given(words, words)
def test_jaccard_never_exceeds_cosine(a: frozenset[str], b: frozenset[str]) -> None:
    assert jaccard(a, b) <= cosine(a, b) + 1e-12
