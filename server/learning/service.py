"""The learning service: record interactions, serve the learnings mined from them
(ranked by `learning.ranking`) and the anomalies seen among them."""

import asyncio
import heapq
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from schemas import (
    Interaction,
    InteractionBatch,
    Learning,
    LearningsPage,
    LearningsQuery,
    LearningType,
    Page,
    RecordResult,
    ScoredLearning,
    StoredInteraction,
    TenantEffect,
)
from schemas.anomalies import AnomaliesQuery, Anomaly
from schemas.learnings import MatchReason
from schemas.system import LearningStats
from server.core.clock import Clock
from server.core.cursor import decode_cursor, encode_cursor, keyset_page
from server.core.embedder import Embedder
from server.core.errors import BatchTooLarge, NotFound
from server.core.stats import level_floor
from server.core.text import cosine, fts_query, query_terms, terms
from server.learning.candidates import threshold_candidates
from server.learning.effects import Comparison, lift
from server.learning.index import Entry, LearningIndex, TenantIndex
from server.learning.lexical import DocumentFrequencies
from server.learning.ranking import Ranked, RankParams, Similarity, agent_weight, rank, unranked
from server.learning.signature import render_action
from server.learning.similarity import PerTask
from server.learning.slots import apply_structured as apply_slots
from server.learning.slots import fill
from server.learning.store import AnomalyFilter, InteractionStore, LearningStore

if TYPE_CHECKING:
    from server.core.vectors import Vector

TOP_CLUSTERS = 64
"""Task clusters nearest the query whose learnings are candidates."""
LEXICAL_TOP = 200
"""Learnings BM25 adds as candidates."""
FREQUENCIES_TTL_S = 60.0
"""How long a term's document count is trusted before it is counted again."""
UNRANKED_CAP = 1000
"""Learnings, most confident first, considered when no task is given."""


class LearningService:
    def __init__(
        self,
        interactions: InteractionStore,
        learnings: LearningStore,
        index: LearningIndex,
        embedder: Embedder | None,
        clock: Clock,
        *,
        max_batch: int,
        ranking: RankParams,
        lexical_postings_max: int,
        holdout_fraction: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self._interactions = interactions
        self._learnings = learnings
        self._index = index
        self._embedder = embedder
        self._clock = clock
        self._max_batch = max_batch
        self._ranking = ranking
        self._postings_max = lexical_postings_max
        self._frequencies = DocumentFrequencies(FREQUENCIES_TTL_S)
        self._holdout = holdout_fraction
        self._rng = rng or random.Random()

    @property
    def retrieval(self) -> Literal["semantic+lexical", "lexical"]:
        return "semantic+lexical" if self._embedder is not None else "lexical"

    def stats(self, sweeps: int, anomalies: int) -> LearningStats:
        clusters, indexed = self._index.size()
        counters = self._embedder.counters() if self._embedder is not None else None
        return LearningStats(
            retrieval=self.retrieval,
            embedding_model=counters.model if counters else None,
            clusters=clusters,
            indexed=indexed,
            embedded_texts=counters.encoded if counters else 0,
            embedding_cache_hits=counters.cache_hits if counters else 0,
            embedding_batches=counters.batches if counters else 0,
            sweeps=sweeps,
            anomalies=anomalies,
        )

    async def record(
        self, tenant: str, items: Sequence[Interaction] | Interaction | InteractionBatch
    ) -> RecordResult:
        """Store one interaction, a batch or a list atomically; returns once they are
        committed. Cancelling leaves the write's fate unknown (it may still commit)."""
        if isinstance(items, InteractionBatch):
            items = items.interactions
        elif isinstance(items, Interaction):
            items = [items]
        if len(items) > self._max_batch:
            raise BatchTooLarge(
                f"at most {self._max_batch} interactions per batch", max_batch=self._max_batch
            )
        ids = await self._interactions.insert(tenant, list(items))
        return RecordResult(ids=ids)

    async def get_interaction(self, tenant: str, interaction_id: int) -> StoredInteraction:
        found = await self._interactions.get(tenant, interaction_id)
        if found is None:
            raise NotFound("no such interaction", id=interaction_id)
        return found

    async def list_interactions(
        self, tenant: str, limit: int, cursor: str | None
    ) -> Page[StoredInteraction]:
        after = decode_cursor(cursor, "after", int) or 0
        rows = await self._interactions.page(tenant, after, limit + 1)
        items, next_cursor = keyset_page(rows, limit, lambda row: row.id)
        return Page[StoredInteraction](items=items, next_cursor=next_cursor)

    async def get_learning(self, tenant: str, learning_id: int) -> Learning:
        found = await self._learnings.get(tenant, learning_id)
        if found is None:
            raise NotFound("no such learning", id=learning_id)
        return found

    async def effect(self, tenant: str) -> TenantEffect:
        """The tenant's measured lift: offered learnings against held out
        (`effects.py`), as last committed. Safe to cancel: it only reads."""
        state = await self._learnings.tally(tenant, "t")
        arms = Comparison.from_state(state) if state else Comparison()
        measured = lift(arms.applied, arms.compared) if arms.applied.n and arms.compared.n else None
        return TenantEffect(
            holdout_fraction=self._holdout,
            offered=arms.applied.n,
            offered_successes=arms.applied.k,
            held_out=arms.compared.n,
            held_out_successes=arms.compared.k,
            lift=measured.lift if measured else None,
            low=measured.low if measured else None,
            high=measured.high if measured else None,
        )

    async def count_task_strategies(self, tenant: str) -> int:
        return await self._learnings.count_active(tenant, LearningType.TASK_STRATEGY)

    # -- ranking -------------------------------------------------------------------

    async def learnings(self, tenant: str, query: LearningsQuery) -> LearningsPage:
        """Active learnings ranked for the query (see `ranking`). Pages are offsets
        into the ranking, which may shift between pages as learning goes on.
        Safe to cancel: it only reads."""
        offset = decode_cursor(query.cursor, "offset", int) or 0
        end = offset + query.limit
        if query.task is not None and self._rng.random() < self._holdout:
            return LearningsPage(items=[], held_out=True)
        index = self._index.tenant(tenant)
        if index is None:
            return LearningsPage(items=[])
        if query.task is None:
            ranked = await self._unranked(tenant, index, query)
        else:
            ranked = await self._ranked(tenant, index, query, query.task, end + 1)
        items = await self._page(tenant, index, ranked[offset:end], query.task)
        next_cursor = encode_cursor(offset=end) if end < len(ranked) else None
        return LearningsPage(items=items, next_cursor=next_cursor)

    async def _ranked(
        self, tenant: str, index: TenantIndex, query: LearningsQuery, task: str, need: int
    ) -> list[Ranked]:
        """Every learning that matched lexically, and enough of the near clusters'
        to hold the `need` best (`candidates`), ranked."""
        vector, lexical = await asyncio.gather(
            self._query_vector(index, task), self._lexical(tenant, task)
        )
        # No await from here to the ranking: the extractor applies folds to the index
        # between awaits, and cluster similarities read before one would miss (or
        # index past) the clusters it adds.
        similarity, nearest = cluster_similarity(index, vector, task)
        keep, now, p = _keep(query), self._clock.now(), self._ranking

        def base(sim: float) -> float:
            relevance = p.alpha * sim
            return relevance**p.relevance_power if relevance >= p.min_relevance else 0.0

        def weight(entry: Entry) -> float:
            return agent_weight(entry, query.agent_type, p.cross_agent_weight) * entry.effect

        ids = threshold_candidates(index, nearest, need, base, now, keep, weight)
        ids |= {i for i in lexical if i in index.entries and keep(index.entries[i])}
        ids |= nearest_task_learnings(index, vector, need, keep)
        entries = [index.entries[i] for i in ids]
        per_task = PerTask(index, task, vector)
        return rank(entries, similarity, lexical, query.agent_type, p, now, per_task)

    async def _query_vector(self, index: TenantIndex, task: str) -> "Vector | None":
        """The query's embedding, when clusters have embeddings to compare it with."""
        if self._embedder is not None and index.vectors is not None:
            return await self._embedder.embed_one(task)
        return None

    async def _lexical(self, tenant: str, task: str) -> dict[int, float]:
        """BM25 over the task's rarest terms (`lexical`). Safe to cancel."""
        words, now = query_terms(task), self._clock.now()
        missing = self._frequencies.missing(words, now)
        if missing:
            matches = [fts_query([w]) or "" for w in missing]
            counts = await self._learnings.match_counts(matches)
            self._frequencies.learn(missing, counts, now)
        match = fts_query(self._frequencies.rarest(words, self._postings_max))
        if match is None:
            return {}
        return dict(await self._learnings.search(tenant, match, LEXICAL_TOP))

    async def _unranked(
        self, tenant: str, index: TenantIndex, query: LearningsQuery
    ) -> list[Ranked]:
        since = query.since.timestamp() if query.since else None
        floor = level_floor(query.min_confidence)
        rows = await self._learnings.top(tenant, floor, query.type, since, UNRANKED_CAP)
        now = self._clock.now()
        entries = [index.entries[r.id] for r in rows if r.id in index.entries]
        ranked = [unranked(e, query.agent_type, self._ranking, now) for e in entries]
        ranked.sort(key=lambda r: (-r.parts.score, -r.entry.confidence, r.entry.id))
        return ranked

    async def _page(
        self, tenant: str, index: TenantIndex, ranked: list[Ranked], task: str | None
    ) -> list[ScoredLearning]:
        """The page's learnings; for a task, slotted ones filled from it, and those
        the task cannot fill left out (their steps would not be executable)."""
        rows = await self._learnings.by_ids(tenant, [r.entry.id for r in ranked])
        asked = terms(task) if task else frozenset()
        found = [
            _scored(filled(rows[r.entry.id], task), r, index, asked, task is None)
            for r in ranked
            if r.entry.id in rows
        ]
        return [learning for learning in found if task is None or not _unfilled(learning)]

    # -- anomalies -----------------------------------------------------------------

    async def anomalies(self, tenant: str, query: AnomaliesQuery) -> Page[Anomaly]:
        """Anomalies newest first. Safe to cancel: it only reads."""
        before = decode_cursor(query.cursor, "before", int)
        since = query.since.timestamp() if query.since else None
        f = AnomalyFilter(tenant, query.agent_type, since, query.min_score, before, query.limit + 1)
        rows = await self._learnings.anomalies(f)
        items = rows[: query.limit]
        more = len(rows) > query.limit
        next_cursor = encode_cursor(before=items[-1].id) if more else None
        return Page[Anomaly](items=items, next_cursor=next_cursor)


def _keep(query: LearningsQuery) -> Callable[[Entry], bool]:
    floor = level_floor(query.min_confidence)
    since = query.since.timestamp() if query.since else None
    kind = query.type

    def keep(e: Entry) -> bool:
        return (
            e.confidence >= floor
            and (kind is None or e.type is kind)
            and (since is None or e.last_seen >= since)
        )

    return keep


def _top(values: list[float], k: int) -> list[int]:
    return heapq.nlargest(k, range(len(values)), key=values.__getitem__)


TOP_TASKS = 32
"""Evidence tasks nearest the query whose learnings are candidates."""


def nearest_task_learnings(
    index: TenantIndex, vector: "Vector | None", need: int, keep: Callable[[Entry], bool]
) -> set[int]:
    """Of each of the TOP_TASKS evidence tasks nearest the query, its `need` kept
    learnings of highest confidence × recency: the ones per-task similarity can
    rank high, whatever their cluster's rank. All of a task's learnings share its
    similarity, so no other of them can reach the top `need` through it; one
    whose rank a measured harm lowered (effect < 1) does not count towards
    `need`, so the scan reads on past it."""
    if vector is None or index.task_vectors is None:
        return set()
    found: set[int] = set()
    for row, _ in index.task_vectors.top(vector, TOP_TASKS):
        counted = 0
        for _, learning_id in index.by_task.get(index.task_texts[row], ()):
            entry = index.entries[learning_id]
            if keep(entry):
                found.add(learning_id)
                counted += entry.effect >= 1.0
                if counted >= need:
                    break
    return found


def filled(learning: Learning, task: str | None) -> Learning:
    """A slotted learning with its slots filled from `task`, when it fills them."""
    if not learning.slots or task is None:
        return learning
    values = fill(learning.slots, learning.task_templates, task)
    if values is None:
        return learning
    steps = apply_slots(learning.steps, values)
    statement = learning.statement
    for name, value in values.items():
        statement = statement.replace("{" + name + "}", value)
    actions = [render_action(step) for step in steps]
    return learning.model_copy(
        update={"steps": steps, "actions": actions, "statement": statement, "slots": []}
    )


def _unfilled(learning: Learning) -> bool:
    return bool(learning.slots)


Nearest = list[tuple[int, float]]
"""(cluster id, similarity), most similar first."""


def cluster_similarity(
    index: TenantIndex, vector: "Vector | None", task: str
) -> tuple[Similarity, Nearest]:
    """The query's similarity to each cluster, and the nearest TOP_CLUSTERS. Reads
    the index as it is now: use the result before the next await."""
    if vector is not None and index.vectors is not None:
        sims = index.vectors.similarities(vector)
        values, keys, rows = sims.tolist(), index.vectors.keys, index.rows
        nearest = [(keys[i], values[i]) for i in _top(values, TOP_CLUSTERS)]
        return (lambda c: values[rows[c]] if c in rows else 0.0), nearest
    return _term_similarity(index, terms(task))


def _term_similarity(index: TenantIndex, asked: frozenset[str]) -> tuple[Similarity, Nearest]:
    """Without embeddings: the term cosine of each cluster sharing a term."""
    shared = set().union(*(index.by_term.get(t, ()) for t in asked)) if asked else set()
    sims = {c: cosine(asked, index.clusters[c].terms) for c in shared}
    nearest = heapq.nlargest(TOP_CLUSTERS, sims.items(), key=lambda cs: cs[1])
    return (lambda c: sims.get(c, 0.0)), nearest


def _scored(
    learning: Learning, r: Ranked, index: TenantIndex, asked: frozenset[str], no_task: bool
) -> ScoredLearning:
    p = r.parts
    cluster = index.clusters.get(p.matched_cluster) if p.matched_cluster is not None else None
    found = terms(f"{learning.task_example} {learning.statement}")
    why = MatchReason(
        similarity=p.similarity,
        similarity_kind="terms" if index.vectors is None else "embedding",
        lexical=p.lexical,
        relevance=p.relevance,
        confidence=r.entry.confidence,
        recency=p.recency,
        agent_weight=p.agent_weight,
        effect_weight=r.entry.effect,
        score=p.score,
        matched_task=p.matched_task or (cluster.example if cluster else None),
        matched_terms=sorted(asked & found),
    )
    fields: dict[str, Any] = dict(learning.__dict__)
    return ScoredLearning.model_construct(
        **fields, relevance=1.0 if no_task else p.relevance, score=p.score, why=why
    )
