"""Consolidation: find near-duplicate knowledge items and merge each group into one.

Similarity is the cosine of the items' sentence embeddings (title, then the strings of
the content) or, without an embedder, the Jaccard similarity of their terms
(server/core/text.py). Measured with all-MiniLM-L6-v2 on title-and-text items,
close paraphrases of one practice scored 0.87 to 0.89, different practices of one topic
(unit-tests-first against integration tests) 0.43 to 0.50, and unrelated ones under 0.25:
hence the default cosine threshold of 0.85. Looser rewordings (an acronym for the name)
scored 0.70 to 0.74 and are left apart: merging is not undone, so the default errs on the
side of keeping items. Jaccard of terms runs lower for the same pairs, hence 0.6.

Grouping is leader clustering (Hartigan, 1975): items are visited best first, each
joins the most similar leader of its category at or above the threshold, or leads a new
group. Unlike single-link grouping it cannot chain A ~ B ~ C into one group when A and C
differ: every merged item is within the threshold of the survivor, its leader.

Merging keeps everything: the survivor gets a version recording the merge (its tags
become the union, its usage the pooled usage, `merged_from` the merged ids), and each
merged item is archived at a version pointing to the survivor, its history intact.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from schemas.kb import MAX_TAGS, KnowledgeState
from server.core.text import jaccard, terms
from server.kb.items import Fields, ItemRecord, VersionRecord, clip_note
from server.kb.states import StateRules, confidence, next_state

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

COSINE_THRESHOLD = 0.85
JACCARD_THRESHOLD = 0.6
MAX_CANDIDATES = 2000
"""Most items one consolidation compares (the newest): comparisons grow as its square."""
TEXT_CHARS = 2000
"""Enough text for the embedder, which reads 256 tokens at most."""

Similarity = Callable[[int, int], float]
_STATE_ORDER = {KnowledgeState.VALIDATED: 0, KnowledgeState.EXPERIMENTAL: 1}


@dataclass(slots=True)
class Group:
    leader: int
    members: list[tuple[int, float]] = field(default_factory=list)
    """(index, similarity to the leader) of each item that joined."""


def item_text(fields: Fields) -> str:
    """The title, then every string of the content in document order."""
    return ". ".join([fields.title, *_strings(fields.content)])[:TEXT_CHARS]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def leader_order(items: Sequence[ItemRecord]) -> list[ItemRecord]:
    """Best survivor first: VALIDATED, then higher confidence, more uses, older."""
    return sorted(
        items,
        key=lambda i: (
            _STATE_ORDER.get(i.state, 2),
            -confidence(i.uses, i.successes),
            -i.uses,
            i.id,
        ),
    )


def cosine_similarity(vectors: "npt.NDArray[np.float32]") -> Similarity:
    """Unit-length rows, so the dot product is the cosine."""
    matrix = vectors @ vectors.T
    return lambda i, j: float(matrix[i, j])


def jaccard_similarity(texts: Sequence[str]) -> Similarity:
    bags = [terms(t) for t in texts]
    return lambda i, j: jaccard(bags[i], bags[j])


def leader_groups(
    categories: Sequence[str], similarity: Similarity, threshold: float
) -> list[Group]:
    """Groups of two items or more over indexes into `categories`, which come best first."""
    leaders: dict[str, list[Group]] = {}
    for index, category in enumerate(categories):
        groups = leaders.setdefault(category, [])
        scored = [(similarity(g.leader, index), g) for g in groups]
        best = max(scored, key=lambda pair: pair[0], default=None)
        if best is not None and best[0] >= threshold:
            best[1].members.append((index, best[0]))
        else:
            groups.append(Group(index))
    return [g for groups in leaders.values() for g in groups if g.members]


def merge(
    survivor: ItemRecord, merged: Sequence[ItemRecord], note: str, now: float, rules: StateRules
) -> tuple[list[ItemRecord], list[VersionRecord]]:
    """The survivor at a version recording the merge, and each merged item archived."""
    pooled = replace(
        survivor,
        uses=survivor.uses + sum(m.uses for m in merged),
        successes=survivor.successes + sum(m.successes for m in merged),
        last_used_at=_latest([survivor.last_used_at, *(m.last_used_at for m in merged)]),
    )
    pooled = replace(pooled, state=next_state(pooled.state, pooled.uses, pooled.successes, rules))
    fields = replace(survivor.fields, tags=_tag_union(survivor, merged))
    merged_ids = tuple(m.id for m in merged)
    item, version = pooled.revise(fields, clip_note(note), now, merged_ids)
    archived = [m.archive(f"merged into #{survivor.id}", now, survivor.id) for m in merged]
    return [item, *(a for a, _ in archived)], [version, *(v for _, v in archived)]


def merge_note(merged_ids: Sequence[int], why: str) -> str:
    """Names the merged ids when few; `merged_from` always holds them all."""
    shown = ", ".join(f"#{i}" for i in merged_ids[:20])
    more = f" and {len(merged_ids) - 20} more" if len(merged_ids) > 20 else ""
    return f"merged near-duplicates {shown}{more} ({why})"


def _tag_union(survivor: ItemRecord, merged: Sequence[ItemRecord]) -> tuple[str, ...]:
    """The survivor's tags first, then the others', up to the tag limit."""
    ordered = dict.fromkeys([*survivor.fields.tags, *(t for m in merged for t in m.fields.tags)])
    return tuple(sorted(list(ordered)[:MAX_TAGS]))


def _latest(times: Sequence[float | None]) -> float | None:
    known = [t for t in times if t is not None]
    return max(known) if known else None
