"""Training-data preparation: instruction/output pairs worth learning from.

Each turn (turns.py: a user ask and the assistant messages answering it) is a
candidate pair {"instruction": ask, "output": answer, "context": session id}, the
format of the seed's training JSONL. The first rule that matches drops a turn:

| reason          | rule                                                              |
|-----------------|-------------------------------------------------------------------|
| unanswered      | no assistant message with text before the next ask                |
| assistant_error | an answering message is an error (metadata or error text)         |
| rejected        | the user's next message is a negative reaction (turns.py table)   |
| trivial         | the ask has no content word besides greetings and thanks, or the  |
|                 | answer has fewer than 3 words or no content word                  |
| duplicate       | the same ask (same words in the same order) was already kept      |

Everything else is kept: praised pairs and pairs nobody contradicted. Learning from
a rejected answer would teach the model the very reply the user pushed back on;
greetings teach nothing; a repeated pair would be weighted twice. Each kept example
carries its reaction ("positive" or "none") so a fine-tuner may weight praised ones.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from server.chat.conversation import SessionRecord
from server.chat.turns import ReactionKind, Turn, split_turns
from server.chat.words import content_words, words

DropReason = Literal["unanswered", "assistant_error", "rejected", "trivial", "duplicate"]

MIN_ANSWER_WORDS = 3
# The seed fine-tunes from 4 messages up, "minimum 2 Q&A pairs".
MIN_EXAMPLES_FOR_FINE_TUNE = 2
# Greetings and acknowledgements beyond the stop-words: an ask made of these only
# is small talk.
_SOCIAL_WORDS = frozenset(
    "bye goodbye good morning evening night afternoon awesome perfect cool nice lol "
    "welcome glad appreciate appreciated hiya yo sup alright".split()
)


@dataclass(frozen=True, slots=True)
class TrainingExample:
    instruction: str
    output: str
    context: str  # the session id
    reaction: ReactionKind  # "positive" or "none": a rejected answer is never kept
    ask_index: int
    answer_index: int

    def to_json(self) -> dict[str, str]:
        """The seed's training record."""
        return {"instruction": self.instruction, "output": self.output, "context": self.context}


@dataclass(frozen=True, slots=True)
class DroppedTurn:
    ask_index: int
    reason: DropReason
    detail: str


@dataclass(frozen=True, slots=True)
class ExamplesResult:
    examples: tuple[TrainingExample, ...]
    dropped: tuple[DroppedTurn, ...]

    @property
    def dropped_counts(self) -> dict[str, int]:
        return dict(Counter(d.reason for d in self.dropped))

    @property
    def enough_for_fine_tune(self) -> bool:
        return len(self.examples) >= MIN_EXAMPLES_FOR_FINE_TUNE


def prepare_examples(record: SessionRecord) -> ExamplesResult:
    """The session's kept training pairs and, for every other turn, why it went."""
    kept: list[TrainingExample] = []
    dropped: list[DroppedTurn] = []
    seen: set[tuple[str, ...]] = set()
    for turn in split_turns(record):
        reason = drop_reason(turn) or _repeat(turn, seen)
        if reason is None:
            kept.append(_example(turn, record.session_id))
        else:
            dropped.append(DroppedTurn(turn.ask_index, *reason))
    return ExamplesResult(tuple(kept), tuple(dropped))


def drop_reason(turn: Turn) -> tuple[DropReason, str] | None:
    """Why a turn is not worth learning from, by the table's first matching rule
    (duplicates aside: they depend on the other turns)."""
    if turn.answer_index is None or not turn.answer.strip():
        return "unanswered", "no assistant reply"
    if turn.error is not None:
        return "assistant_error", turn.error
    if turn.reaction.kind == "negative":
        return "rejected", f"{turn.reaction.signal} at message {turn.reaction.index}"
    if why := _triviality(turn):
        return "trivial", why
    return None


def _repeat(turn: Turn, seen: set[tuple[str, ...]]) -> tuple[DropReason, str] | None:
    """ "duplicate" when an earlier kept pair had the same ask; else remembers it."""
    key = tuple(words(turn.ask))
    if key in seen:
        return "duplicate", "same ask as a kept pair"
    seen.add(key)
    return None


def _triviality(turn: Turn) -> str | None:
    if not content_words(turn.ask) - _SOCIAL_WORDS:
        return "small-talk ask"
    if len(turn.answer.split()) < MIN_ANSWER_WORDS or not content_words(turn.answer):
        return "answer too short"
    return None


def _example(turn: Turn, session_id: str) -> TrainingExample:
    assert turn.answer_index is not None  # drop_reason dropped unanswered turns
    reaction: ReactionKind = "positive" if turn.reaction.kind == "positive" else "none"
    return TrainingExample(
        turn.ask, turn.answer, session_id, reaction, turn.ask_index, turn.answer_index
    )
