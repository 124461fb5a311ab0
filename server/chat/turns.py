"""Turns and reactions: who asked what, what came back, and how the user took it.

A turn is a user ask (consecutive user messages joined) and the assistant messages
that answer it, up to the next user message; system and tool messages are skipped.
The user's next message is the reaction to the answer. Both the preference stage and
the training-data stage read reactions, so they agree on which answers were rejected.

Reaction signals, most specific first (the first that matches wins):

| signal       | kind     | the user's next message...                                    |
|--------------|----------|---------------------------------------------------------------|
| too_long     | negative | "too long", "too verbose", "tl;dr", "shorter", "more concise"  |
| too_short    | negative | "too short", "more detail", "elaborate", "expand on"           |
| too_complex  | negative | "too complicated/technical", "I don't understand", "confusing" |
| too_basic    | negative | "too basic", "I know the basics", "skip the basics"            |
| wrong        | negative | "that's wrong", "incorrect", "not what I asked", "no, ..."     |
| not_working  | negative | "doesn't work", "still getting", "same error"                  |
| not_helpful  | negative | "not helpful", "useless"                                       |
| re_ask       | negative | asks the previous question again (see `is_re_ask`)             |
| praise       | positive | "thanks", "perfect", "that worked", "makes sense", "exactly"   |
| none         | none     | anything else: a new question, or no next message              |

A re-ask means the answer missed: in search logs, reformulating a query predicts
dissatisfaction with the results (Hassan et al. 2013, "Beyond clicks: query
reformulation as a predictor of search satisfaction").
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from server.chat.conversation import Message, SessionRecord
from server.chat.words import content_words

ReactionKind = Literal["positive", "negative", "none"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'"})
_NEGATIVE_PATTERNS = {
    "too_long": r"\btoo (long|verbose|wordy|much (text|detail|info\w*))\b|\btl;?dr\b"
    r"|\b(shorter|briefer|more concise)\b|\bget to the point\b",
    "too_short": r"\btoo (short|brief|terse)\b|\b(more|not enough|lacks?) details?\b"
    r"|\belaborate\b|\bexpand on\b|\bgo deeper\b",
    "too_complex": r"\btoo (complicated|complex|technical|advanced)\b|\bconfus(ed|ing)\b"
    r"|\b(don't|do not|still don't) (understand|get it)\b|\bmakes no sense\b"
    r"|\bwhat do you mean\b|\bover my head\b",
    "too_basic": r"\btoo (basic|simple|elementary)\b|\bi (already )?know (that|the basics)\b"
    r"|\bskip the basics\b",
    "wrong": r"\b(that's|that is|this is|it's|you're|you are) (wrong|incorrect|not (right|"
    r"correct|true))\b|\bincorrect\b|\bwrong answer\b|\bnot what i (asked|meant|wanted)\b"
    r"|^\W*(no|nope)\b[,.!]",
    "not_working": r"\b(doesn't|does not|didn't|did not|won't|still doesn't) work\b"
    r"|\bnot working\b|\bsame (error|problem|issue)\b"
    r"|\bstill (broken|failing|fails|getting|gets|get|has|have|seeing|see)\b",
    "not_helpful": r"\bnot (very )?(helpful|useful)\b|\buseless\b|\bunhelpful\b",
}
_NEGATIVE_SIGNALS = {name: re.compile(pattern) for name, pattern in _NEGATIVE_PATTERNS.items()}
_PRAISE = re.compile(
    r"\b(thanks|thank you|thx|cheers|perfect|awesome|excellent|brilliant|great answer"
    r"|exactly what i (needed|wanted)|(that|it|this) (worked|works|helped|fixed it|did it)"
    r"|works now|makes sense|very helpful|that's helpful|got it)\b"
)
_REPHRASE = re.compile(r"\b(again|i asked|my question (was|is)|let me rephrase|to rephrase)\b")
_ERROR_CONTENT = re.compile(
    r"^\W*(error|exception|traceback \(most recent call last\)|internal error"
    r"|an error occurred|(i'm )?sorry,? (but )?(i )?(encountered|ran into|hit) an? (error|problem))"
)
_ERROR_STATUSES = frozenset({"error", "failed", "failure", "exception"})


@dataclass(frozen=True, slots=True)
class Reaction:
    kind: ReactionKind
    signal: str  # a name from the table above
    index: int | None  # position of the reacting message in the session


NO_REACTION = Reaction("none", "none", None)


@dataclass(frozen=True, slots=True)
class Turn:
    ask_index: int  # position of the ask's first user message
    ask: str
    answer_index: int | None  # position of the last answering message; None: unanswered
    answer: str
    error: str | None  # why the answer is an assistant error, else None
    reaction: Reaction


def split_turns(record: SessionRecord) -> list[Turn]:
    """The session's turns in order, each with the reaction the next ask gave it."""
    groups = _group(record.messages)
    turns: list[Turn] = []
    for n, (asks, answers) in enumerate(groups):
        following = groups[n + 1][0] if n + 1 < len(groups) else []
        turns.append(_turn(asks, answers, following))
    return turns


Group = tuple[list[tuple[int, Message]], list[tuple[int, Message]]]


def _group(messages: Sequence[Message]) -> list[Group]:
    """(user messages, assistant messages) pairs; assistant messages before the first
    user message (a greeting) belong to no turn."""
    groups: list[Group] = []
    for i, message in enumerate(messages):
        if message.role == "user" and (not groups or groups[-1][1]):
            groups.append(([], []))
        if message.role == "user":
            groups[-1][0].append((i, message))
        elif message.role == "assistant" and groups:
            groups[-1][1].append((i, message))
    return groups


def _turn(
    asks: list[tuple[int, Message]],
    answers: list[tuple[int, Message]],
    following: list[tuple[int, Message]],
) -> Turn:
    ask = "\n".join(m.content for _, m in asks)
    answer = "\n\n".join(m.content for _, m in answers if m.content.strip())
    error = next((why for _, m in answers if (why := answer_error(m)) is not None), None)
    reaction = NO_REACTION
    if answers and following:
        reaction = classify_reaction(following[0][1].content, ask, following[0][0])
    last = answers[-1][0] if answers else None
    return Turn(asks[0][0], ask, last, answer, error, reaction)


def classify_reaction(reply: str, previous_ask: str, index: int | None = None) -> Reaction:
    """How `reply`, the user's next message, received the answer to `previous_ask`."""
    text = reply.lower().translate(_APOSTROPHES)
    for name, pattern in _NEGATIVE_SIGNALS.items():
        if pattern.search(text):
            return Reaction("negative", name, index)
    if is_re_ask(reply, previous_ask):
        return Reaction("negative", "re_ask", index)
    if _PRAISE.search(text):
        return Reaction("positive", "praise", index)
    return Reaction("none", "none", index)


def is_re_ask(reply: str, previous_ask: str) -> bool:
    """The reply asks the previous question again: it shares ≥ 2 content words with
    it and adds none (a rephrasing), or it shares one and says "again", "I asked",
    "let me rephrase". A follow-up adds words ("...across two hosts?"), so it is
    not a re-ask."""
    now, before = content_words(reply), content_words(previous_ask)
    shared = now & before
    if _REPHRASE.search(reply.lower()):
        return bool(shared)
    return len(shared) >= 2 and now <= before


def answer_error(message: Message) -> str | None:
    """Why an assistant message is an error, or None: its metadata says so (a truthy
    `error`, or `status` error/failed), or it opens like an error report."""
    if why := _metadata_error(message.metadata):
        return why
    if _ERROR_CONTENT.search(message.content.lower().translate(_APOSTROPHES)):
        return "error text"
    return None


def _metadata_error(metadata: Mapping[str, Any]) -> str | None:
    if metadata.get("error"):
        return "metadata error"
    if str(metadata.get("status", "")).lower() in _ERROR_STATUSES:
        return "metadata status"
    return None
