"""The state of a knowledge item, from the evidence of its use.

A *use* is one report (POST /kb/items/{id}/usage) that an agent applied the item to a
task; the use is a *success* when that task succeeded. With n uses and k successes over
the item's life, compared as integers so that the thresholds are exact:

    n < 5               → EXPERIMENTAL   (too few uses to judge either way)
    100·k ≥ 80·n        → VALIDATED      (at least 80% of at least 5 uses succeeded)
    100·k < 40·n        → DEPRECATED     (under 40% succeeded)
    otherwise           → EXPERIMENTAL   (40% ≤ k/n < 80%: neither proven nor refuted)

The state depends on the counts alone, so an item moves back as its evidence changes:
a VALIDATED item whose rate falls under 80% returns to EXPERIMENTAL; a DEPRECATED item
that recovers to 40% returns to EXPERIMENTAL, and at 80% is VALIDATED again. From n ≥ 5
one use moves the rate by at most 1/(n + 1) ≤ 1/6, so no single use swaps VALIDATED and
DEPRECATED. An edit keeps the counts: they are evidence about the item, which edits refine.

ARCHIVED is outside the rule: only pruning and consolidation archive, and an archived
item stays archived, a historical record whose usage is refused.
"""

from dataclasses import dataclass

from schemas.kb import KnowledgeState
from server.core.stats import wilson_lower_bound


@dataclass(frozen=True, slots=True)
class StateRules:
    min_uses: int = 5
    validate_percent: int = 80
    deprecate_percent: int = 40

    def __post_init__(self) -> None:
        if self.min_uses < 1 or not 0 <= self.deprecate_percent < self.validate_percent <= 100:
            raise ValueError("need min_uses ≥ 1 and 0 ≤ deprecate_percent < validate_percent ≤ 100")


DEFAULT_RULES = StateRules()


def state_for(uses: int, successes: int, rules: StateRules = DEFAULT_RULES) -> KnowledgeState:
    """The rule of the module docstring, for an item that is not archived."""
    if uses < rules.min_uses:
        return KnowledgeState.EXPERIMENTAL
    if 100 * successes >= rules.validate_percent * uses:
        return KnowledgeState.VALIDATED
    if 100 * successes < rules.deprecate_percent * uses:
        return KnowledgeState.DEPRECATED
    return KnowledgeState.EXPERIMENTAL


def next_state(
    current: KnowledgeState, uses: int, successes: int, rules: StateRules = DEFAULT_RULES
) -> KnowledgeState:
    """ARCHIVED stays; any other state follows the counts."""
    if current is KnowledgeState.ARCHIVED:
        return current
    return state_for(uses, successes, rules)


def success_rate(uses: int, successes: int) -> float | None:
    return successes / uses if uses else None


def confidence(uses: int, successes: int) -> float:
    """Wilson lower bound (95%) of the success rate: ranks 50 of 50 above 5 of 5."""
    return wilson_lower_bound(successes, uses)
