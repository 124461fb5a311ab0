"""Lexical view of task descriptions: terms, and the similarities built on them."""

import math
import re
from collections.abc import Iterable

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    "a an and are as at be by for from how in into is it its of on or that the this to "
    "with without i we you my our your do does some any all".split()
)


def terms(text: str) -> frozenset[str]:
    """Lower-cased alphanumeric words minus stopwords, with a plural `s` folded
    (tests → test, but class stays class): enough for lexical matching."""
    return frozenset(_fold(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


def query_words(text: str) -> list[str]:
    """The words of a text as `terms` folds them, in order, stopwords kept."""
    return [_fold(w) for w in _WORD.findall(text.lower())]


def _fold(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """|A ∩ B| / |A ∪ B| (Jaccard, 1901); 0 for two empty sets."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def cosine(a: frozenset[str], b: frozenset[str]) -> float:
    """Cosine of binary term vectors, |A ∩ B| / sqrt(|A|·|B|) (Ochiai, 1957)."""
    if not a or not b:
        return 0.0
    return len(a & b) / math.sqrt(len(a) * len(b))


QUERY_TERMS_MAX = 64


def query_terms(text: str) -> list[str]:
    """The terms of a query text that lexical search considers, in a stable order."""
    return sorted(terms(text))[:QUERY_TERMS_MAX]


def fts_query(words: Iterable[str]) -> str | None:
    """An FTS5 query matching any of `words`, each quoted so no character of the
    user's text is read as FTS5 syntax; None without words."""
    quoted = [f'"{w}"' for w in words]
    return " OR ".join(quoted) if quoted else None
