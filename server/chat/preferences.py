"""Preference detection: how this user likes answers, from what they ask and how
they react.

Four preferences, each reported only when the evidence for one value reaches
`min_support` and beats every other value:

    explanation_style  concise | detailed | step_by_step
    code_examples      wanted | not_wanted
    response_length    short | medium | long
    complexity         beginner | intermediate | expert

Signals (weight; one message gives one value at most one vote, its strongest):

| signal            | where                      | votes                                 | weight |
|-------------------|----------------------------|---------------------------------------|--------|
| request_code      | "show me code", "snippet"  | code_examples=wanted                  | 1.0    |
| request_no_code   | "no code", "just explain"  | code_examples=not_wanted              | 1.0    |
| request_brief     | "briefly", "tl;dr"         | response_length=short, style=concise  | 1.0    |
| request_detail    | "in detail", "in depth"    | response_length=long, style=detailed  | 1.0    |
| request_steps     | "step by step"             | style=step_by_step                    | 1.0    |
| request_simple    | "ELI5", "I'm new to"       | complexity=beginner                   | 1.0    |
| request_advanced  | "skip the basics"          | complexity=expert                     | 1.0    |
| too_long          | reaction (turns.py)        | response_length=short, style=concise  | 1.0    |
| too_short         | reaction                   | response_length=long, style=detailed  | 1.0    |
| too_complex       | reaction                   | complexity=beginner                   | 1.0    |
| too_basic         | reaction                   | complexity=expert                     | 1.0    |
| praise            | reaction to an answer      | + the answer's shape (below)          | 0.5    |
| re_ask, not_helpful | reaction to an answer    | − the answer's shape                  | 0.5    |
| jargon_density    | all user words, ≥ 20       | ≥ 0.20 expert, ≥ 0.10 intermediate    | 1.0    |

An answer's shape: its length bucket (< 80 words short, ≤ 250 medium, else long;
80 words is about one paragraph, 250 about one screen), style concise for a short
answer and detailed for a long one, code_examples=wanted when it has a code block,
style=step_by_step when it has three or more numbered or bulleted lines. A praised
answer votes for its shape; one the user re-asked or called unhelpful votes against
it. "Wrong" and "doesn't work" judge correctness, not shape, so they vote nothing
here. Absent features vote nothing: an answer without code that got thanks says
nothing about code.

Jargon density: the share of the user's words that look technical by their shape
(an inner dot, underscore or hyphen, letters mixed with digits, camelCase, an
acronym of two or more capitals, a --flag, or an `inline code` span), fenced code
blocks left out: pasted code is not the user's vocabulary. Low density
is not evidence of a beginner: plain words are how most people ask.

Confidence: top / (sum of positive value scores + 1), the +1 a pseudo-count for
"no preference" (Laplace smoothing): one explicit request gives 0.5, two 0.67.
"""

import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from server.chat.conversation import SessionRecord
from server.chat.turns import Turn, split_turns
from server.chat.words import prose, without_code

DEFAULT_MIN_SUPPORT = 1.0
SHORT_WORDS = 80
LONG_WORDS = 250
MIN_JARGON_WORDS = 20
EXPERT_DENSITY = 0.20
INTERMEDIATE_DENSITY = 0.10
REACTION_WEIGHT = 0.5
EXCERPT_CHARS = 80

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})
_REQUEST_PATTERNS = {
    "request_code": r"\bshow me (the |some |an? )?(code|example|snippet)|\bsnippet\b"
    r"|\b(code|usage) (example|sample)s?\b|\b(example|sample) code\b|\bwith code\b"
    r"|\bgive me (the |some )?code\b",
    "request_no_code": r"\bno code\b|\bwithout (any )?code\b|\bjust explain\b"
    r"|\b(don't|do not) (need|want|show)( me)? (the |any )?code\b|\bin (plain )?words\b"
    r"|\bconceptually\b",
    "request_brief": r"\bbriefly\b|\b(short|quick|brief) answer\b|\bkeep it (short|brief)\b"
    r"|\bin (one|a) (sentence|line)\b|\btl;?dr\b|\bconcise\b|\bjust the (answer|command)\b"
    r"|\bsummar(y|ise|ize)\b|\bshorter\b",
    "request_detail": r"\bin (more |great |full )?detail\b|\bdetailed\b|\bin[- ]depth\b"
    r"|\bthorough(ly)?\b|\bcomprehensive\b|\bexplain (it |this )?fully\b|\belaborate\b",
    "request_steps": r"\bstep[- ]by[- ]step\b|\bwalk me through\b|\bone step at a time\b"
    r"|\bwhat are the steps\b|\bin steps\b",
    "request_simple": r"\beli5\b|\blike i'm (five|5)\b|\bin simple (terms|words)\b"
    r"|\bplain english\b|\bfor a beginner\b|\bi'm (new|a beginner|a newbie|a noob)\b"
    r"|\bi am new\b|\bnot a programmer\b",
    "request_advanced": r"\bskip the basics\b|\bi'm (an? )?(experienced|senior|expert)\b"
    r"|\bunder the hood\b|\binternals\b|\badvanced (answer|explanation|details)\b",
}
_REQUESTS = {name: re.compile(pattern) for name, pattern in _REQUEST_PATTERNS.items()}
Votes = tuple[tuple[str, str], ...]
_BRIEF: Votes = (("response_length", "short"), ("explanation_style", "concise"))
_DETAILED: Votes = (("response_length", "long"), ("explanation_style", "detailed"))
_REQUEST_VOTES: dict[str, Votes] = {
    "request_code": (("code_examples", "wanted"),),
    "request_no_code": (("code_examples", "not_wanted"),),
    "request_brief": _BRIEF,
    "request_detail": _DETAILED,
    "request_steps": (("explanation_style", "step_by_step"),),
    "request_simple": (("complexity", "beginner"),),
    "request_advanced": (("complexity", "expert"),),
}
_REACTION_VOTES: dict[str, Votes] = {
    "too_long": _BRIEF,
    "too_short": _DETAILED,
    "too_complex": (("complexity", "beginner"),),
    "too_basic": (("complexity", "expert"),),
}
_SHAPE_NEGATIVE = frozenset({"re_ask", "not_helpful"})
_CODE_BLOCK = re.compile(r"```|^(?: {4}|\t)\S", re.MULTILINE)
_LIST_LINE = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022]|step \d+)\s", re.MULTILINE | re.IGNORECASE)
_RAW_TOKEN = re.compile(r"`[^`\n]+`|--?[A-Za-z][\w-]*|\w+(?:[-.]\w+)*")
_JARGON_SHAPE = re.compile(
    r"^`|^--?[A-Za-z]|\w[._-]\w|[A-Za-z]\d|\d[A-Za-z]|[a-z][A-Z]|[A-Z]{2,}",
)


@dataclass(frozen=True, slots=True)
class PreferenceSignal:
    index: int | None  # position of the message in the session; None: all user messages
    signal: str  # a signal name from the table above
    weight: float  # negative: evidence against the value
    excerpt: str


@dataclass(frozen=True, slots=True)
class Preference:
    name: str
    value: str
    confidence: float
    evidence: tuple[PreferenceSignal, ...]

    @property
    def label(self) -> str:
        return f"{self.name}={self.value}"


@dataclass(frozen=True, slots=True)
class PreferencesResult:
    preferences: tuple[Preference, ...]

    def get(self, name: str) -> Preference | None:
        return next((p for p in self.preferences if p.name == name), None)

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.preferences]


@dataclass(frozen=True, slots=True)
class _Vote:
    name: str
    value: str
    evidence: PreferenceSignal


def detect_preferences(
    record: SessionRecord, *, min_support: float = DEFAULT_MIN_SUPPORT
) -> PreferencesResult:
    """The preferences the session shows evidence for; none on a neutral session."""
    votes = [
        *_request_votes(record),
        *_reaction_votes(split_turns(record), record),
        *_jargon_votes(record),
    ]
    by_name: dict[str, list[_Vote]] = defaultdict(list)
    for vote in votes:
        by_name[vote.name].append(vote)
    decided = (_decide(name, by_name[name], min_support) for name in sorted(by_name))
    return PreferencesResult(tuple(p for p in decided if p is not None))


def _request_votes(record: SessionRecord) -> Iterator[_Vote]:
    for index, message in record.indexed("user"):
        text = _normalised(message.content)
        for signal, pattern in _REQUESTS.items():
            if pattern.search(text):
                evidence = PreferenceSignal(index, signal, 1.0, _excerpt(message.content))
                yield from _votes(_REQUEST_VOTES[signal], evidence)


def _reaction_votes(turns: list[Turn], record: SessionRecord) -> Iterator[_Vote]:
    for turn in turns:
        reaction = turn.reaction
        if reaction.index is None:
            continue
        excerpt = _excerpt(record.messages[reaction.index].content)
        if targets := _REACTION_VOTES.get(reaction.signal):
            yield from _votes(
                targets, PreferenceSignal(reaction.index, reaction.signal, 1.0, excerpt)
            )
        elif reaction.kind == "positive" or reaction.signal in _SHAPE_NEGATIVE:
            weight = REACTION_WEIGHT if reaction.kind == "positive" else -REACTION_WEIGHT
            evidence = PreferenceSignal(reaction.index, reaction.signal, weight, excerpt)
            yield from _votes(answer_shape(turn.answer), evidence)


def answer_shape(answer: str) -> Votes:
    """The (preference, value) pairs an answer exemplifies; see the module docstring."""
    words = len(answer.split())
    length = "short" if words < SHORT_WORDS else "medium" if words <= LONG_WORDS else "long"
    shape = [("response_length", length)]
    style = {"short": "concise", "long": "detailed"}.get(length)
    if len(_LIST_LINE.findall(answer)) >= 3:
        style = "step_by_step"
    if style:
        shape.append(("explanation_style", style))
    if _CODE_BLOCK.search(answer):
        shape.append(("code_examples", "wanted"))
    return tuple(shape)


def _jargon_votes(record: SessionRecord) -> Iterator[_Vote]:
    text = "\n".join(without_code(m.content) for _, m in record.indexed("user"))
    tokens = _RAW_TOKEN.findall(text)
    if len(tokens) < MIN_JARGON_WORDS:
        return
    density = jargon_density(tokens)
    level = "expert" if density >= EXPERT_DENSITY else "intermediate"
    if density >= INTERMEDIATE_DENSITY:
        signal = f"jargon_density={density:.2f}"
        yield _Vote(
            "complexity", level, PreferenceSignal(None, signal, 1.0, f"{len(tokens)} words")
        )


def jargon_density(tokens: list[str]) -> float:
    """Share of tokens with a technical shape (k8s, node.js, max_retries, eBPF, TCP,
    --force, `inline code`); 0 for no tokens."""
    if not tokens:
        return 0.0
    return sum(1 for t in tokens if _JARGON_SHAPE.search(t)) / len(tokens)


def _votes(targets: Votes, evidence: PreferenceSignal) -> Iterator[_Vote]:
    return (_Vote(name, value, evidence) for name, value in targets)


def _decide(name: str, votes: list[_Vote], min_support: float) -> Preference | None:
    """The winning value, or None when none reaches min_support or two tie."""
    strongest = _strongest_per_message(votes)
    scores: dict[str, float] = defaultdict(float)
    for vote in strongest:
        scores[vote.value] += vote.evidence.weight
    ranked = sorted(scores.values(), reverse=True)
    value = max(scores, key=lambda v: scores[v])
    if ranked[0] < min_support or (len(ranked) > 1 and ranked[1] == ranked[0]):
        return None
    confidence = ranked[0] / (sum(s for s in ranked if s > 0) + 1)
    evidence = tuple(v.evidence for v in strongest if v.value == value)
    return Preference(name, value, round(confidence, 3), evidence)


def _strongest_per_message(votes: list[_Vote]) -> list[_Vote]:
    """One vote per (value, message): a message matching a request and a reaction
    for the same value counts once, at its strongest weight."""
    kept: dict[tuple[str, int | None], _Vote] = {}
    for vote in votes:
        key = (vote.value, vote.evidence.index)
        if key not in kept or abs(vote.evidence.weight) > abs(kept[key].evidence.weight):
            kept[key] = vote
    return sorted(kept.values(), key=_evidence_order)


def _evidence_order(vote: _Vote) -> tuple[int, str]:
    index = vote.evidence.index
    return (-1 if index is None else index, vote.evidence.signal)


def _normalised(text: str) -> str:
    return prose(text).translate(_APOSTROPHES)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 3] + "..."
