"""Per-source reliability: whether an agent's recorded successes hold up when
others apply the learnings they built.

A source is one agent instance: the `agent_id` in an interaction's metadata. A
learning's pattern remembers how many of its successes came from each source
(c_s). When another source applies the learning, the outcome credits each of its
sources by its share, c_s / Σc, as an outcome that held up or not (k_s of n_s,
fractional). A source's reliability is the mean of a Beta posterior given the
benefit of the doubt, m = `prior_outcomes` outcomes that held up, as in the Beta
reputation system (Jøsang & Ismail, 2002) with a prior of trust:

    r_s = (k_s + m) / (n_s + m)

so a new source counts fully, and one whose learnings fail for others fades:
r = 3/8 after five such failures, 3/13 after ten. A pattern's successes are then
weighed by their sources' reliability, successes without a source at 1:

    w = Σ_s c_s·r_s / Σ_s c_s,    k′ = w·k,   n′ = n − k + k′

and its confidence and majority are read off (k′, n′): a liar's successes shrink
towards nothing and its learnings lose rank and, outvoted, retire.
"""

import math
from collections.abc import Mapping
from typing import Any

from server.learning.patterns import Evidence

SOURCE_KEY = "agent_id"
SOURCE_LEN = 128


def source_of(metadata: Any) -> str | None:
    """The interaction's source: its metadata's `agent_id`, if it is short text."""
    if not isinstance(metadata, Mapping):
        return None
    found = metadata.get(SOURCE_KEY)
    return found if isinstance(found, str) and 0 < len(found) <= SOURCE_LEN else None


def reliability(held: float, applied: float, m: float) -> float:
    """r = (k + m) / (n + m); 1 with no outcome yet."""
    return (held + m) / (applied + m) if applied + m > 0 else 1.0


def weight(sources: Mapping[str, int], reliable: Mapping[str, float], unsourced: int) -> float:
    """w = Σ c_s·r_s / Σ c_s over the pattern's successes (unsourced at r = 1)."""
    total = unsourced + sum(sources.values())
    if total == 0:
        return 1.0
    weighed = unsourced + sum(c * reliable.get(s, 1.0) for s, c in sources.items())
    return weighed / total


def shares(sources: Mapping[str, int], applier: str | None) -> dict[str, float]:
    """Each source's share of the pattern's sourced successes, the applier's own
    left out: an agent does not vouch for itself."""
    others = {s: c for s, c in sources.items() if s != applier}
    total = sum(others.values())
    return {s: c / total for s, c in others.items()} if total else {}


def weighed(ev: Evidence, w: float) -> Evidence:
    """The evidence with its successes weighed by w: k′ = w·k, n′ = n − k + k′, the
    success sums scaled alike, and the windowed wins rounded (a count of attempts)."""
    if w >= 1.0:
        return ev
    wins = math.floor(w * ev.wins + 0.5)
    k = w * ev.k
    return Evidence(
        ev.n - ev.k + k,
        k,
        w * ev.sum_t,
        w * ev.sum_t2,
        w * ev.sum_i,
        w * ev.sum_i2,
        ev.count - ev.wins + wins,
        wins,
    )
