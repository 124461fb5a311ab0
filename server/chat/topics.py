"""Topic extraction: the keyphrases a session is about, ranked by meaning.

Candidates. 1- to 3-word n-grams inside runs of adjacent content words
(words.content_runs): stop-words, punctuation and line breaks end a run, so no
candidate starts or ends on a function word and none spans two sentences. Candidates
that differ only by a plural `s` are merged under their most frequent spelling. The
`max_candidates` most frequent are kept, as CountVectorizer's max_features does for
KeyBERT, which bounds the cost of embedding them.

Ranking with an embedder, KeyBERT-style (Grootendorst 2020): a candidate's relevance
is the cosine of its embedding to the session's embedding, the normalised mean of
the embeddings of its user and assistant messages. The top-k are then picked by
Maximal Marginal Relevance (Carbonell & Goldstein 1998):

    next = argmax over unpicked c of  λ·rel(c) − (1 − λ)·max over picked p of sim(c, p)

so "docker network" does not also bring "docker networks" and "docker networking".
Each topic keeps its relevance as its score; MMR only chooses and orders.

Fallback without an embedder (or when it fails): RAKE (Rose et al. 2010). A word's
score is its degree deg(w), the summed length of the content-word runs it occurs in,
which favours words that occur often and in longer phrases (ibid., "keyword scores"); a
phrase's score is the sum over its words, divided by the best phrase's. The same MMR
picks the top-k, with the Jaccard similarity of the phrases' folded words as sim.
"""

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

from server.chat.conversation import SessionRecord
from server.chat.words import content_runs, fold
from server.core.text import jaccard

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Matrix: TypeAlias = NDArray[np.float32]

log = logging.getLogger("kaizen.sessions")

EmbedFn: TypeAlias = Callable[[list[str]], "Matrix"]
Method = Literal["embedding", "rake", "none"]

MAX_WORDS = 3
DEFAULT_TOP_K = 5
# λ = 0.7 weighs relevance above novelty. Tried on the tests' sessions with MiniLM:
# 0.6 let weakly related single words in ("overnight" for a sourdough session), 0.8
# let near-duplicates crowd the list ("fermentation" beside "bulk fermentation").
DEFAULT_LAMBDA = 0.7
# A longer phrase must beat each of its sub-phrases by this much cosine to be kept.
PADDING_MARGIN = 0.05
# Embedding one short phrase costs about 1.5 ms on a 2-core CPU: 200 ≈ 0.3 s.
DEFAULT_MAX_CANDIDATES = 200


@dataclass(frozen=True, slots=True)
class Topic:
    phrase: str
    score: float  # cosine to the session (embedding) or RAKE score / best (rake)


@dataclass(frozen=True, slots=True)
class TopicsResult:
    topics: tuple[Topic, ...]
    method: Method
    candidates: int  # ranked: after merging, the max_candidates cut and padding pruning

    @property
    def phrases(self) -> list[str]:
        return [topic.phrase for topic in self.topics]


def candidate_phrases(text: str, max_words: int = MAX_WORDS) -> list[str]:
    """Distinct 1..max_words-grams of adjacent content words, first occurrence first."""
    return list(_ngram_counts(content_runs(text), max_words))


def extract_topics(
    record: SessionRecord,
    embed: EmbedFn | None = None,
    *,
    top_k: int = DEFAULT_TOP_K,
    diversity_lambda: float = DEFAULT_LAMBDA,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
) -> TopicsResult:
    """The session's top-k topics; `embed` maps texts to rows of vectors (the
    stage runs in a worker thread, so it may block). Without it, RAKE ranks."""
    texts = session_texts(record)
    runs = [run for text in texts for run in content_runs(text)]
    counts = _merge_plurals(_ngram_counts(runs, MAX_WORDS))
    candidates = [phrase for phrase, _ in counts.most_common(max_candidates)]
    if not candidates:
        return TopicsResult((), "none", 0)
    if embed is not None:
        try:
            return _by_embedding(texts, candidates, embed, top_k, diversity_lambda)
        except Exception:
            log.warning("topic embedding failed: ranking with RAKE", exc_info=True)
    return _by_rake(runs, candidates, top_k, diversity_lambda)


def session_texts(record: SessionRecord) -> list[str]:
    """The non-blank user and assistant messages: system prompts and tool output
    are boilerplate or data, not what the conversation is about."""
    return [m.content for _, m in record.indexed("user", "assistant") if m.content.strip()]


def _ngram_counts(runs: Iterable[Sequence[str]], max_words: int) -> Counter[str]:
    counts: Counter[str] = Counter()
    for run in runs:
        for size in range(1, max_words + 1):
            counts.update(" ".join(run[i : i + size]) for i in range(len(run) - size + 1))
    return counts


def _merge_plurals(counts: Counter[str]) -> Counter[str]:
    """One entry per folded phrase, spelled as its most frequent variant."""
    variants: dict[tuple[str, ...], Counter[str]] = {}
    for phrase, count in counts.items():
        key = tuple(fold(word) for word in phrase.split())
        variants.setdefault(key, Counter())[phrase] = count
    return Counter({v.most_common(1)[0][0]: v.total() for v in variants.values()})


def _by_embedding(
    texts: list[str], candidates: list[str], embed: EmbedFn, top_k: int, lam: float
) -> TopicsResult:
    rows, relevance = _relevance(texts, candidates, embed)
    kept = _without_padding(candidates, relevance)
    pairwise = rows[kept] @ rows[kept].T
    kept_relevance = [relevance[i] for i in kept]
    picked = mmr(kept_relevance, lambda i, j: float(pairwise[i, j]), top_k, lam)
    return _result([candidates[i] for i in kept], kept_relevance, picked, "embedding")


def _relevance(
    texts: list[str], candidates: list[str], embed: EmbedFn
) -> tuple["Matrix", list[float]]:
    """The candidates' unit vectors, and their cosines to the session's vector."""
    import numpy as np

    # Two calls, not one: a batch is padded to its longest text, and messages are
    # ten times longer than phrases (one mixed batch measured 4× slower).
    messages = _unit_rows(np.asarray(embed(texts), dtype=np.float32))
    rows = _unit_rows(np.asarray(embed(candidates), dtype=np.float32))
    centre = _unit_rows(messages.mean(axis=0, keepdims=True))[0]
    return rows, [float(r) for r in rows @ centre]


def _without_padding(candidates: list[str], relevance: list[float]) -> list[int]:
    """Indices of the candidates that earn their length: a phrase goes when one of
    its shorter sub-phrases is within PADDING_MARGIN of its relevance, so "docker
    compose" stays and "docker compose creates" goes. Without a part-of-speech
    tagger this is what keeps verbs and adverbs off the ends of phrases."""
    position = {phrase: i for i, phrase in enumerate(candidates)}
    return [
        i
        for i, phrase in enumerate(candidates)
        if all(
            relevance[position[sub]] < relevance[i] - PADDING_MARGIN
            for sub in _sub_phrases(phrase)
            if sub in position
        )
    ]


def _sub_phrases(phrase: str) -> list[str]:
    """The shorter contiguous n-grams of a phrase."""
    parts = phrase.split()
    return [
        " ".join(parts[i : i + size])
        for size in range(1, len(parts))
        for i in range(len(parts) - size + 1)
    ]


def _unit_rows(matrix: "Matrix") -> "Matrix":
    """Rows scaled to length 1 (zero rows stay zero): cosines become dot products."""
    import numpy as np

    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: Matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
    return unit


def _by_rake(runs: list[list[str]], candidates: list[str], top_k: int, lam: float) -> TopicsResult:
    degree = rake_degrees(runs)
    raw = [sum(degree[fold(w)] for w in phrase.split()) for phrase in candidates]
    best = max(raw) or 1
    relevance = [score / best for score in raw]
    word_sets = [frozenset(fold(w) for w in phrase.split()) for phrase in candidates]
    picked = mmr(relevance, lambda i, j: jaccard(word_sets[i], word_sets[j]), top_k, lam)
    return _result(candidates, relevance, picked, "rake")


def rake_degrees(runs: Iterable[Sequence[str]]) -> Counter[str]:
    """deg(w): for every occurrence of w, the length of its run (Rose et al. 2010),
    by folded word."""
    degree: Counter[str] = Counter()
    for run in runs:
        for word in run:
            degree[fold(word)] += len(run)
    return degree


def mmr(
    relevance: Sequence[float], similarity: Callable[[int, int], float], k: int, lam: float
) -> list[int]:
    """Indices of up to k items picked by Maximal Marginal Relevance (Carbonell &
    Goldstein 1998); the earliest item wins a tie."""
    picked: list[int] = []
    left = list(range(len(relevance)))
    while left and len(picked) < k:
        best = max(left, key=lambda i: _marginal(i, relevance, similarity, picked, lam))
        picked.append(best)
        left.remove(best)
    return picked


def _marginal(
    i: int,
    relevance: Sequence[float],
    similarity: Callable[[int, int], float],
    picked: list[int],
    lam: float,
) -> float:
    redundancy = max((similarity(i, p) for p in picked), default=0.0)
    return lam * relevance[i] - (1 - lam) * redundancy


def _result(
    candidates: list[str], relevance: list[float], picked: list[int], method: Method
) -> TopicsResult:
    topics = tuple(Topic(candidates[i], round(relevance[i], 4)) for i in picked)
    return TopicsResult(topics, method, len(candidates))
