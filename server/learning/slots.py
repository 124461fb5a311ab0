"""Slots: argument values that follow the task, abstracted out of a sequence.

An argument whose value appears in the interaction's own task text (as a whole
phrase, case aside) is taken to follow the task: `{"type": "PUT", "object":
"shirt", "target": "laundry basket"}` for the task "put the dirty shirt away"
slots as `{"object": "{object}", ...}` with the task template "put the dirty
{object} away"; "laundry basket" is not in the task, so it stays concrete. The
miner states a slotted sequence only once it succeeded with at least two
different fillings, so a value that must stay concrete stays concrete. This is
how Agent Workflow Memory abstracts example-specific values out of the workflows
it induces (Wang et al., 2024, "Agent Workflow Memory", arXiv:2409.07429).

A served slotted learning is filled from the query: the query is matched against
the evidence task templates, whole, then by the ANCHOR_WORDS words on each side
of a slot, then fewer; a learning none of whose templates fills every slot is
not served as executable.
"""

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from server.core.text import STOPWORDS, query_words, terms
from server.learning.signature import structured, type_key

SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
VALUE_MIN = 2
"""Shorter values ("a", "1") appear in most texts by chance."""
ANCHOR_WORDS = 3
ANCHORED_WORDS_MAX = 6
CLAUSE = re.compile(r"[;:!?\n]")


@dataclass(frozen=True, slots=True)
class Slotted:
    steps: tuple[str, ...]
    """The sequence with slotted values as "{name}"."""
    template: str
    """The task with each slotted value as "{name}"."""
    filling: tuple[tuple[str, str], ...]
    """(slot name, value) in order of first use."""


@functools.lru_cache(maxsize=65_536)
def slot(signature: tuple[str, ...], task: str) -> Slotted | None:
    """The sequence with its task-given values slotted, or None if it has none.
    Cached: agents repeat the same steps for the same task."""
    lowered = task.lower()
    names: dict[str, str] = {}
    steps = tuple(_slot_step(step, lowered, names) for step in signature)
    if not names:
        return None
    filling = tuple((name, value) for value, name in names.items())
    return Slotted(steps, _template(task, filling), filling)


def _slot_step(step: str, task: str, names: dict[str, str]) -> str:
    action = structured(step)
    kind = type_key(action)
    changed = False
    for key, value in action.items():
        if key != kind and _follows(value, task):
            action[key] = "{" + _name(key, value, names) + "}"
            changed = True
    return orjson.dumps(action, option=orjson.OPT_SORT_KEYS).decode() if changed else step


def _follows(value: Any, task: str) -> bool:
    if not isinstance(value, str) or len(value.strip()) < VALUE_MIN or SLOT.search(value):
        return False
    return _phrase(value.lower()).search(task) is not None


def _phrase(value: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + re.escape(value) + r"(?!\w)")


def _name(key: str, value: str, names: dict[str, str]) -> str:
    """The slot for `value`: one name per distinct value, named after its field."""
    found = names.get(value)
    if found is None:
        base = re.sub(r"\W", "_", key) or "slot"
        taken = set(names.values())
        found = next(n for n in _candidates(base) if n not in taken)
        names[value] = found
    return found


def _candidates(base: str) -> Iterable[str]:
    yield base if base[0].isalpha() or base[0] == "_" else f"s_{base}"
    n = 2
    while True:
        yield f"{base}{n}"
        n += 1


def _template(task: str, filling: Sequence[tuple[str, str]]) -> str:
    for name, value in sorted(filling, key=lambda nv: -len(nv[1])):
        task = re.sub(_phrase(value.lower()).pattern, "{" + name + "}", task, flags=re.I)
    return task


def slot_names(steps: Iterable[str]) -> list[str]:
    """The slots a sequence uses, in order of first use."""
    found: dict[str, None] = {}
    for step in steps:
        if '"{' not in step:  # no value of this step's JSON opens with a brace
            continue
        for value in structured(step).values():
            if isinstance(value, str) and (m := SLOT.fullmatch(value)):
                found[m.group(1)] = None
    return list(found)


def fill(names: Sequence[str], templates: Iterable[str], query: str) -> dict[str, str] | None:
    """Values for every one of `names` read off the query, or None."""
    for template in templates:
        found = _match(template, query)
        if found is not None and all(n in found for n in names):
            return {n: found[n] for n in names}
    return None


def _match(template: str, query: str) -> dict[str, str] | None:
    whole = _pattern(template).search(query)
    if whole is not None:
        return whole.groupdict()
    if not _resembles(template, query):
        return None
    found: dict[str, str] = {}
    for name in dict.fromkeys(SLOT.findall(template)):
        value = _anchored(template, name, query)
        if value is not None:
            found[name] = value
    return found or None


def _resembles(template: str, query: str) -> bool:
    """Whether the query is the template reworded around its slots: it holds the
    template's first term (mostly the verb) and all of its other terms but one.
    "chop the {object}, cooking a meal" must not fill from "eat the meal, cooking
    a meal", nor a don't learned while chopping stop an agent from eating."""
    fixed = [w for w in query_words(SLOT.sub(" ", template)) if w not in STOPWORDS]
    if not fixed:
        return False
    asked = terms(query)
    held = sum(1 for w in dict.fromkeys(fixed) if w in asked)
    return fixed[0] in asked and held >= len(dict.fromkeys(fixed)) - 1


def _anchored(template: str, name: str, query: str) -> str | None:
    before, _, after = template.partition("{" + name + "}")
    left, right = SLOT.sub(" ", before).split(), SLOT.sub(" ", after).split()
    for n in range(ANCHOR_WORDS, 0, -1):
        pre, post = left[-n:], right[:n]
        if not pre and not post:
            continue
        value = _between(pre, post, query)
        if value:
            return value
    return None


def _between(pre: Sequence[str], post: Sequence[str], query: str) -> str | None:
    """The value between the anchor words: up to the tail's words, or, for a slot
    that ends its template, up to the end of the clause. A value must look like
    one (ANCHORED_WORDS_MAX words, no clause punctuation): a loose anchor on
    another template's task otherwise fills in half a sentence."""
    head = r"\s+".join(re.escape(w) for w in pre)
    tail = r"\s+".join(re.escape(w) for w in post)
    opening = (head + _gap(pre[-1], after=True)) if head else r"(?<!\S)"
    if tail:
        pattern = opening + r"(?P<v>\w[^\n]*?\w|\w)" + _gap(post[0], after=False) + tail
    else:
        pattern = opening + r"(?P<v>[^\n.;:!?,]*[^\s.;:!?,])"
    found = re.search(pattern, query, flags=re.I)
    value = found.group("v") if found else None
    return value if value is not None and _value_like(value) else None


def _gap(word: str, *, after: bool) -> str:
    """Whitespace between an anchor word and the value; none needed next to
    punctuation ("the {object}, cooking" fills from "the meal, cooking")."""
    edge = word[-1] if after else word[0]
    return r"\s+" if edge.isalnum() or edge == "_" else r"\s*"


def _value_like(value: str) -> bool:
    return len(value.split()) <= ANCHORED_WORDS_MAX and not CLAUSE.search(value)


def fills_whole(template: str, query: str) -> bool:
    """Whether the query is the template with some value in each slot."""
    return _pattern(template).search(query) is not None


@functools.lru_cache(maxsize=4096)
def _pattern(template: str) -> re.Pattern[str]:
    parts, seen, at = [], set(), 0
    for m in SLOT.finditer(template):
        parts.append(_loose(template[at : m.start()]))
        name = m.group(1)
        parts.append(f"(?P={name})" if name in seen else rf"(?P<{name}>\w.*?\w|\w)")
        seen.add(name)
        at = m.end()
    parts.append(_loose(template[at:]))
    return re.compile("^" + "".join(parts) + "$", flags=re.I | re.S)


def _loose(text: str) -> str:
    return r"\s+".join(re.escape(w) for w in text.split(" ")) if text.strip() else r"\s*"


def apply(steps: Iterable[str], filling: Mapping[str, str]) -> list[dict[str, Any]]:
    """The structured actions with each slot replaced by its value."""
    return apply_structured([structured(step) for step in steps], filling)


def apply_structured(
    actions: Iterable[Mapping[str, Any]], filling: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Copies of `actions` with each slot replaced by its value."""
    done = []
    for original in actions:
        action = dict(original)
        for key, value in action.items():
            if isinstance(value, str) and (m := SLOT.fullmatch(value)) and m.group(1) in filling:
                action[key] = filling[m.group(1)]
        done.append(action)
    return done
