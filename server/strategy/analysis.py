"""Task analysis: requirements, keywords, complexity and a
duration estimate with its interval. Pure: the service supplies the history.

Requirements are capability families named by a small lexicon of stems (below);
they say what kinds of work a task asks for, and so which agent roles it needs.
Keywords are the description's own terms (`text.terms`), in order of appearance.

Complexity follows the levels, read as "how many steps, how many agents":

    steps  = max(clauses, families)      clauses: parts split on , ; "and" "then"
    roles  = distinct agent roles the families call for
    bonus  = 1 per context flag saying the work is spread (multiple_files,
             multiple_services, coordination) + 1 if context lists > 3 files

    TRIVIAL       steps + bonus ≤ 1 and at most 8 words
    SIMPLE        steps + bonus ≤ 2 and roles ≤ 1
    MODERATE      steps + bonus ≤ 4 and roles ≤ 2
    COMPLEX       steps + bonus ≤ 6 and roles ≤ 3
    VERY_COMPLEX  otherwise
"""

import math
import re
from collections.abc import Mapping
from typing import Any

from schemas.strategy import Complexity, DurationEstimate
from server.core.text import STOPWORDS

Z_95 = 1.959963984540054

FAMILIES: dict[str, tuple[str, ...]] = {
    "implementation": ("implement", "build", "creat", "add", "writ", "develop", "generat"),
    "testing": ("test", "pytest", "coverage", "unittest", "qa"),
    "security": ("auth", "login", "oauth", "jwt", "secur", "permission", "encrypt", "token"),
    "data": ("database", "sql", "schema", "migrat", "query", "postgres", "sqlite", "table"),
    "api": ("api", "rest", "endpoint", "graphql", "http", "route"),
    "interface": ("ui", "frontend", "page", "css", "react", "component", "layout"),
    "documentation": ("doc", "readme", "comment", "tutorial"),
    "deployment": ("deploy", "docker", "kubernetes", "ci", "pipeline", "release", "helm"),
    "performance": ("optimi", "performance", "speed", "latency", "cach", "profil"),
    "debugging": ("fix", "bug", "debug", "error", "crash", "failing", "broken"),
    "refactoring": ("refactor", "cleanup", "clean", "restructur", "renam", "simplif"),
    "review": ("review", "audit", "inspect"),
    "research": ("research", "investigat", "analy", "compar", "evaluat", "explor"),
}
"""Stems, matched at the start of a word: "creat" finds create, created, creating."""

ROLES: dict[str, str] = {
    "implementation": "code",
    "api": "code",
    "data": "code",
    "interface": "code",
    "security": "security",
    "testing": "test",
    "debugging": "debug",
    "refactoring": "code",
    "performance": "code",
    "documentation": "docs",
    "deployment": "devops",
    "review": "review",
    "research": "research",
}
"""The agent role each family calls for: the prior behind suggested agents when
no similar task has history. Roles are the words the seeds use for agent types."""

SPREAD_FLAGS = ("multiple_files", "multiple_services", "coordination")

PRIOR_SECONDS: dict[Complexity, float] = {
    Complexity.TRIVIAL: 30.0,
    Complexity.SIMPLE: 120.0,
    Complexity.MODERATE: 600.0,
    Complexity.COMPLEX: 1800.0,
    Complexity.VERY_COMPLEX: 7200.0,
}
PRIOR_SPREAD = 4.0
"""The prior, used only without any history: a median per level, each four times
the one below it at the upper levels, and an interval of ×/÷ 4 around it (a
log-normal guess with sigma = ln 4 / 1.96). It is a stated guess, served with
`basis="prior"` and `samples=0`; outcomes replace it as soon as there are three."""

MIN_SAMPLES = 3.0
_WORD = re.compile(r"[a-z0-9]+")
_CLAUSE = re.compile(r"[,;]|\band\b|\bthen\b|\bplus\b", re.IGNORECASE)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def requirements(description: str, context: Mapping[str, Any]) -> list[str]:
    """Families whose stems start a word of the description, in lexicon order,
    plus any `context["requirements"]` strings the caller names."""
    seen = words(description)
    found = [f for f, stems in FAMILIES.items() if any(w.startswith(stems) for w in seen)]
    extra = context.get("requirements")
    if isinstance(extra, list):
        found += [r for r in extra if isinstance(r, str) and r and r not in found][:16]
    return found


def keywords(description: str, limit: int = 12) -> list[str]:
    """The description's words in order of first appearance, minus stopwords and
    numbers."""
    out: list[str] = []
    for word in words(description):
        if word not in STOPWORDS and not word.isdigit() and len(word) > 1 and word not in out:
            out.append(word)
    return out[:limit]


def roles(families: list[str]) -> list[str]:
    """Agent roles the families call for, in order, without repeats."""
    return list(dict.fromkeys(ROLES[f] for f in families if f in ROLES))


def complexity(description: str, families: list[str], context: Mapping[str, Any]) -> Complexity:
    """The level of the module docstring's table."""
    clauses = len([c for c in _CLAUSE.split(description) if c and c.strip()])
    load = max(clauses, len(families)) + _spread(context)
    n_roles = len(roles(families))
    if load <= 1 and len(words(description)) <= 8:
        return Complexity.TRIVIAL
    for level, max_load, max_roles in _LEVELS:
        if load <= max_load and n_roles <= max_roles:
            return level
    return Complexity.VERY_COMPLEX


_LEVELS = (
    (Complexity.SIMPLE, 2, 1),
    (Complexity.MODERATE, 4, 2),
    (Complexity.COMPLEX, 6, 3),
)


def _spread(context: Mapping[str, Any]) -> int:
    flags = sum(1 for f in SPREAD_FLAGS if context.get(f) is True)
    files = context.get("files")
    return flags + (1 if isinstance(files, list) and len(files) > 3 else 0)


def from_similar_tasks(k: float, sum_t: float, sum_t2: float) -> DurationEstimate | None:
    """Mean completion time of the successful similar attempts, with a 95%
    prediction interval for one more attempt (normal approximation):

        m = Σt / k,   s² = (Σt² / k − m²) · k / (k − 1)
        m ± z · s · sqrt(1 + 1/k)          (lower end clipped at 0)

    Counts are decayed (the learning window), so k is an effective count; None
    below MIN_SAMPLES."""
    if k < MIN_SAMPLES:
        return None
    mean = sum_t / k
    var = max(0.0, sum_t2 / k - mean * mean) * k / (k - 1)
    half = Z_95 * math.sqrt(var) * math.sqrt(1 + 1 / k)
    return DurationEstimate(
        seconds=mean, low=max(0.0, mean - half), high=mean + half, basis="similar_tasks", samples=k
    )


def from_log_durations(n: int, sum_log: float, sum_log2: float) -> DurationEstimate | None:
    """Durations of past outcomes at the same complexity, as a log-normal: the
    median exp(mu) and the 95% prediction interval exp(mu ± z·sigma·sqrt(1 + 1/n)),
    with mu, sigma the mean and standard deviation of ln(1 + d). None below MIN_SAMPLES."""
    if n < MIN_SAMPLES:
        return None
    mu = sum_log / n
    sigma = math.sqrt(max(0.0, sum_log2 / n - mu * mu) * n / (n - 1))
    half = Z_95 * sigma * math.sqrt(1 + 1 / n)
    return DurationEstimate(
        seconds=math.expm1(mu),
        low=max(0.0, math.expm1(mu - half)),
        high=math.expm1(mu + half),
        basis="complexity_history",
        samples=float(n),
    )


def prior(level: Complexity) -> DurationEstimate:
    """PRIOR_SECONDS and PRIOR_SPREAD: see there."""
    median = PRIOR_SECONDS[level]
    return DurationEstimate(
        seconds=median,
        low=median / PRIOR_SPREAD,
        high=median * PRIOR_SPREAD,
        basis="prior",
        samples=0.0,
    )
