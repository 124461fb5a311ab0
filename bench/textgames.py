"""Text games: does an agent that asks Kaizen get better in a text-game world that
nobody on the project wrote?

    HF_HUB_OFFLINE=1 python -m bench.textgames [--episodes 300] [--test 100] [--seed 1]
        [--quick] [--games cookingworld peckingorder]

The world is TextWorld Express (Jansen & Côté, 2022; PyPI `textworld-express`, Java
behind py4j). Each turn the game prints an observation and lists the commands that
are valid now; an episode is won at score 1 and lost when the game says so. Two
games, with small parameters so that an episode takes a few dozen steps:

- cookingworld (one kitchen, one ingredient, one distractor food, no doors, no
  inventory limit; 50 steps): read the cookbook, take the ingredient, follow the
  directions (slice, dice and chop need the knife in hand; roast, fry and grill
  mean cooking in the oven, on the stove and in the toaster), prepare the meal,
  eat it. Eating any food, or cooking or cutting it the wrong way, loses. What
  transfers between seeds: the procedure, which appliance each direction means,
  that the knife comes first, and which moves lose. Two ingredients and two
  distractors left every agent but the oracle near 0.
- peckingorder (30 steps): the instructions book names one item to take; after
  each take it names the next; taking any other item loses. What transfers: read
  the book, take exactly what it names, read it again. Chosen over the others
  because its experience transfers and a no-memory agent fails it: in coin and
  mapreader the baseline below wins 94-100% and the house layouts differ by seed,
  arithmetic and sorting need a calculation no recorded action holds, and
  simonsays is peckingorder's lesson without the procedure. twc is kept for
  evaluation elsewhere.

The agent pursues one sub-goal at a time, read off the game's own texts: "find and
read the cookbook" until the recipe shows, then "take the red apple" for the
ingredient, each direction as written ("roast the red apple", "prepare meal"),
then "eat the meal"; in peckingorder "read the instructions book" until the book
names an item, then what it names ("take the orange"). A sub-goal is reached when
the score rises on a step whose text says so ("You roast the red apple with the
oven.") or, for reading, when the clue shows. One attempt at one sub-goal is one
interaction, because a sub-goal is what recurs across seeds, while a whole
episode's commands never repeat: task_description = "<sub-goal>, <game> in the
<room>" ("roast the red apple, cooking a meal in the kitchen"), so the verb and
the ingredient are words Kaizen can match and slot; success = the sub-goal was
reached (an attempt that the game ends in a loss, or that runs out of steps,
failed).

Actions are recorded structured, each argument in a field of its own, parsed from
the game's command grammar (`parse`) and rendered back to commands (`render`;
every command recorded must round-trip): "take red apple" → {"type": "take",
"object": "red apple"}, "put red apple in fridge" → {"type": "put", "object": "red
apple", "target": "fridge"}, "open door to north" → {"type": "open", "object":
"door", "direction": "north"}, "move north" → {"type": "move", "direction":
"north"}. Results align with actions: {"success": true, "score_delta": d} for a
step the game carried out, {"success": false, "error": "game lost", "observation":
…} for the step that lost, {"success": false, "error": <the game's words>} for one
it refused. docs/textgames.md says it all for integrators.

Agents (no language model), on the same seeds:

- baseline: a random valid command, never a passive one (look around, inventory,
  task, examine …), one not tried yet this episode while there is one; no memory;
- kaizen: the same agent, but at the start of each attempt it asks
  `get_relevant_learnings(task, agent_type="textgame", limit=10)` and, at each
  step, plays a step of the best-ranked success-type learning (SUCCESS_PATTERN,
  TASK_STRATEGY, BEST_PRACTICE, OPTIMIZATION) that gives one: its `steps`
  rendered to commands, the one nearest the learning's end that is valid now and
  not played yet (a pattern reached its goal at its last step; what came before
  was set-up or detour), following at most FOLLOWED_MAX learnings an attempt. It
  does not play the last step of an `avoid` learning whose other steps it has
  played, unless a success learning ranked above that one says to. Otherwise the
  heuristic, with the avoided commands left out. A learning without `steps`
  gives nothing to play. It records each attempt with `offered_learnings` and
  `applied_learnings` (the learnings whose steps it played);
- oracle: the game's gold path (`getGoldActionSequence`); nothing else reads it.

Protocol: N training episodes on seeds of the 'train' fold, then M on unseen seeds
of the 'test' fold, which kaizen plays asking Kaizen but recording nothing, so it
is scored on what it learned in training; one fresh Kaizen per game. Reported:
success rate per 50 training episodes and on unseen seeds, sub-goals reached by
kind, and how many steps came from learnings. Targets, on unseen seeds after at
most 300 training episodes: kaizen ≥ 0.6 x oracle, and kaizen ≥ baseline + 0.2.
Writes bench/results/textgames.json, with examples of the learnings kaizen was
handed on unseen seeds and what it did with them.
"""

import argparse
import asyncio
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from textworld_express import TextWorldExpressEnv  # type: ignore[import-untyped]

from bench.common import start_server, table, write_results
from client import KaizenClient
from schemas import Interaction, ScoredLearning

AGENT_TYPE = "textgame"
WINDOW = 50
QUERY_LIMIT = 10
FOLLOWED_MAX = 2
"""Learnings an attempt follows, best-ranked first, before it explores."""
TARGET_RATIO = 0.6
TARGET_GAIN = 0.2
TARGET_EPISODES = 300
EXAMPLES_PER_GOAL = 2
SUCCESS_TYPES = frozenset({"SUCCESS_PATTERN", "TASK_STRATEGY", "BEST_PRACTICE", "OPTIMIZATION"})
PASSIVE = frozenset({"look around", "inventory", "task"})
PASSIVE_VERBS = frozenset({"examine"})
REFUSALS = ("unknown action", "you can't", "i'm not sure", "that is already")
ROOM = re.compile(r"You are in the ([^.]+)\.")


# -- the command grammar -------------------------------------------------------------

PREPOSITION = {"put": "in", "cook": "in", "take": "from", "open": "to", "close": "to"}
"""The verbs that take a second argument, and the word that introduces it."""
DIRECTIONS = frozenset({"north", "south", "east", "west", "up", "down", "around"})


def parse(command: str) -> dict[str, str]:
    """A command as verb + arguments: "put red apple in fridge" → {"type": "put",
    "object": "red apple", "target": "fridge"}; `render` gives the command back."""
    verb, _, rest = command.partition(" ")
    if not rest:
        return {"type": verb}
    if rest in DIRECTIONS:
        return {"type": verb, "direction": rest}
    joint = f" {PREPOSITION[verb]} " if verb in PREPOSITION else None
    if joint is None or joint not in rest:
        return {"type": verb, "object": rest}
    thing, _, other = rest.partition(joint)
    return {"type": verb, "object": thing, _second_field(other): other}


def _second_field(value: str) -> str:
    return "direction" if value in DIRECTIONS else "target"


def render(action: Mapping[str, Any]) -> str:
    """The command a structured action stands for (the inverse of `parse`)."""
    verb = str(action.get("type", ""))
    words = [verb, str(action["object"])] if "object" in action else [verb]
    second = action.get("target", action.get("direction"))
    if second is not None and "object" in action:
        words.append(PREPOSITION.get(verb, "in"))
    return " ".join(words if second is None else [*words, str(second)])


def structured(command: str) -> dict[str, str]:
    action = parse(command)
    if render(action) != command:
        raise ValueError(f"the grammar does not round-trip {command!r}: {action}")
    return action


# -- the world -------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """What the game shows after a reset or a step."""

    text: str
    valid: tuple[str, ...]
    score: float
    won: bool
    lost: bool

    @property
    def done(self) -> bool:
        return self.won or self.lost


def seen_from(observation: str, infos: Mapping[str, Any]) -> Seen:
    return Seen(
        observation,
        tuple(sorted(infos["validActions"])),
        float(infos["score"]),
        bool(infos["tasksuccess"]) or float(infos["score"]) >= 1.0,
        bool(infos["taskfailure"]),
    )


class World:
    """One TextWorld Express JVM; the step limit is the bench's, not the game's."""

    def __init__(self) -> None:
        self.env = TextWorldExpressEnv(envStepLimit=10_000)

    def load(self, game: "Game") -> None:
        self.env.load(game.name, game.params)

    def reset(self, seed: int, fold: str, *, gold: bool = False) -> Seen:
        observation, infos = self.env.reset(seed=seed, gameFold=fold, generateGoldPath=gold)
        return seen_from(observation, infos)

    def step(self, command: str) -> Seen:
        observation, _, _, infos = self.env.step(command)
        return seen_from(observation, infos)

    def gold(self) -> list[str]:
        return [str(a) for a in self.env.getGoldActionSequence()]

    def seeds(self, fold: str) -> list[int]:
        found = self.env.getValidSeedsTrain() if fold == "train" else self.env.getValidSeedsTest()
        return [int(s) for s in found]

    def close(self) -> None:
        self.env.close()


def room_of(text: str, known: str) -> str:
    found = ROOM.search(text)
    return found.group(1) if found else known


# -- sub-goals ------------------------------------------------------------------------


class Goals(Protocol):
    def current(self) -> str: ...
    def observe(self, command: str, seen: Seen, gained: bool) -> bool:
        """Take in a step's outcome; whether it reached the current sub-goal."""
        ...


def reached(goal: str, command: str, text: str) -> bool:
    """The game says the goal happened ("You roast the red apple …"), or the
    command is the goal itself ("prepare meal")."""
    return command == goal or goal in text.lower()


READ_COOKBOOK = "find and read the cookbook"
EAT_MEAL = "eat the meal"


class CookingGoals:
    def __init__(self) -> None:
        self.pending: list[str] = [READ_COOKBOOK]
        self.gains: list[tuple[str, str]] = []

    def current(self) -> str:
        return self.pending[0] if self.pending else EAT_MEAL

    def observe(self, command: str, seen: Seen, gained: bool) -> bool:
        goal = self.current()
        if gained:
            self.gains.append((command, seen.text))
        if goal == READ_COOKBOOK:
            return self._read(seen.text)
        done = [g for g in self.pending if gained and reached(g, command, seen.text)]
        self.pending = [g for g in self.pending if g not in done]
        return goal in done

    def _read(self, text: str) -> bool:
        if "Ingredients:" not in text:
            return False
        goals = [*recipe_goals(text), EAT_MEAL]
        self.pending = [g for g in goals if not any(reached(g, c, t) for c, t in self.gains)]
        return True


def recipe_goals(text: str) -> list[str]:
    """The cookbook's ingredients as "take the …", then its directions as written."""
    ingredients, _, directions = text.split("Ingredients:", 1)[1].partition("Directions:")
    takes = [f"take the {line.strip()}" for line in ingredients.splitlines() if line.strip()]
    return [*takes, *(line.strip() for line in directions.splitlines() if line.strip())]


READ_BOOK = "read the instructions book"
INSTRUCTION = re.compile(r"The current task is to ([^.]+)\.")


class PeckingGoals:
    def __init__(self) -> None:
        self.instruction: str | None = None

    def current(self) -> str:
        return self.instruction or READ_BOOK

    def observe(self, command: str, seen: Seen, gained: bool) -> bool:
        goal = self.current()
        told = INSTRUCTION.search(seen.text)
        if told is not None:
            self.instruction = told.group(1).strip()
            return goal == READ_BOOK
        if goal != READ_BOOK and gained and reached(goal, command, seen.text):
            self.instruction = None
            return True
        return False


@dataclass(frozen=True)
class Game:
    name: str
    params: str
    step_limit: int
    context: str
    goals: Callable[[], Goals]


GAMES = (
    Game(
        "cookingworld",
        "numLocations=1,numIngredients=1,numDistractorItems=1,includeDoors=0,limitInventorySize=0",
        50,
        "cooking a meal",
        CookingGoals,
    ),
    Game("peckingorder", "", 30, "following the instructions book", PeckingGoals),
)


def describe(game: Game, goal: str, room: str) -> str:
    """The task an integrator sends: the sub-goal first, then where it is pursued."""
    return f"{goal}, {game.context} in the {room}"


# -- attempts and episodes -------------------------------------------------------------


@dataclass
class Attempt:
    """One try at one sub-goal: what Kaizen records as one interaction."""

    task: str
    goal: str
    started: float = field(default_factory=time.perf_counter)
    actions: list[dict[str, str]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    offered: list[int] = field(default_factory=list)
    applied: list[int] = field(default_factory=list)
    from_learnings: int = 0

    def add(self, command: str, result: dict[str, Any]) -> None:
        self.actions.append(structured(command))
        self.results.append(result)

    def played(self) -> Counter[str]:
        return Counter(render(a) for a in self.actions)

    def may_follow(self, learning_id: int) -> bool:
        return learning_id in self.applied or len(self.applied) < FOLLOWED_MAX

    def apply(self, learning_id: int) -> None:
        self.from_learnings += 1
        if learning_id not in self.applied:
            self.applied.append(learning_id)


def step_result(before: float, seen: Seen) -> dict[str, Any]:
    delta = round(seen.score - before, 4)
    if seen.lost:
        return {
            "success": False,
            "score_delta": delta,
            "error": "game lost",
            "observation": seen.text.strip(),
        }
    if seen.text.strip().lower().startswith(REFUSALS):
        return {"success": False, "score_delta": delta, "error": seen.text.strip()}
    return {"success": True, "score_delta": delta}


@dataclass(frozen=True)
class Episode:
    seed: int
    won: bool
    steps: int
    ending: str
    """How it ended: "won", "lost: <verb of the losing command>" or "step limit"."""
    goals: tuple[tuple[str, bool], ...]
    """Each sub-goal attempted, and whether it was reached."""


class Agent(Protocol):
    name: str
    reads_gold: bool

    def start(self, world: World) -> None: ...
    async def begin(self, task: str, goal: str) -> Attempt: ...
    def choose(self, attempt: Attempt, seen: Seen, tried: set[str]) -> str: ...
    async def end(self, attempt: Attempt, success: bool) -> None: ...


@dataclass
class Play:
    """An episode under way: the game's state as the agent tracks it."""

    game: Game
    seen: Seen
    goals: Goals
    room: str
    tried: set[str] = field(default_factory=set)
    steps: int = 0
    last: str = ""
    reached: list[tuple[str, bool]] = field(default_factory=list)

    def task(self) -> str:
        return describe(self.game, self.goals.current(), self.room)


async def play(world: World, game: Game, agent: Agent, seed: int, fold: str) -> Episode:
    seen = world.reset(seed, fold, gold=agent.reads_gold)
    agent.start(world)
    state = Play(game, seen, game.goals(), room_of(seen.text, "room"))
    while state.steps < game.step_limit and not state.seen.done:
        await attempt_goal(world, agent, state)
    return Episode(seed, state.seen.won, state.steps, ending(state), tuple(state.reached))


async def attempt_goal(world: World, agent: Agent, state: Play) -> None:
    """Steps towards the current sub-goal until it is reached, the game ends or
    the episode runs out of steps; then the attempt is over."""
    attempt = await agent.begin(state.task(), state.goals.current())
    success = False
    while not success and not state.seen.done and state.steps < state.game.step_limit:
        command = agent.choose(attempt, state.seen, state.tried)
        success = take_step(world, state, attempt, command)
    reached = success and not state.seen.lost
    state.reached.append((attempt.goal, reached))
    await agent.end(attempt, reached)


def take_step(world: World, state: Play, attempt: Attempt, command: str) -> bool:
    before = state.seen.score
    state.seen = world.step(command)
    state.steps += 1
    state.last = command
    state.tried.add(command)
    state.room = room_of(state.seen.text, state.room)
    attempt.add(command, step_result(before, state.seen))
    return state.goals.observe(command, state.seen, state.seen.score > before)


def ending(state: Play) -> str:
    if state.seen.won:
        return "won"
    if state.seen.lost:
        return f"lost: {parse(state.last)['type']}"
    return "step limit"


# -- agents -------------------------------------------------------------------------


def passive(command: str) -> bool:
    return command in PASSIVE or command.split(" ", 1)[0] in PASSIVE_VERBS


def heuristic(valid: Sequence[str], tried: set[str], rng: random.Random) -> str:
    """A random command that changes something, one not tried yet if any is left."""
    active = [c for c in valid if not passive(c)] or list(valid)
    fresh = [c for c in active if c not in tried]
    return rng.choice(fresh or active)


class Baseline:
    name = "baseline"
    reads_gold = False

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def start(self, world: World) -> None:
        pass

    async def begin(self, task: str, goal: str) -> Attempt:
        return Attempt(task, goal)

    def choose(self, attempt: Attempt, seen: Seen, tried: set[str]) -> str:
        return heuristic(seen.valid, tried, self.rng)

    async def end(self, attempt: Attempt, success: bool) -> None:
        pass


class Oracle:
    name = "oracle"
    reads_gold = True

    def __init__(self) -> None:
        self.path: list[str] = []

    def start(self, world: World) -> None:
        self.path = world.gold()

    async def begin(self, task: str, goal: str) -> Attempt:
        return Attempt(task, goal)

    def choose(self, attempt: Attempt, seen: Seen, tried: set[str]) -> str:
        return self.path.pop(0) if self.path else seen.valid[0]

    async def end(self, attempt: Attempt, success: bool) -> None:
        pass


# -- what the kaizen agent reads off learnings ---------------------------------------------


@dataclass(frozen=True)
class Advice:
    """A learning as the agent uses it: its steps as game commands."""

    id: int
    score: float
    commands: tuple[str, ...]
    avoid: bool


def advice_from(learning: ScoredLearning) -> Advice | None:
    """None for learnings with nothing to play (no steps) or nothing to play here
    (error recoveries: a step that fails in these games ends the episode)."""
    avoid = learning.avoid or learning.type == "FAILURE_PATTERN"
    if not learning.steps or not (avoid or learning.type in SUCCESS_TYPES):
        return None
    commands = tuple(render(step) for step in learning.steps)
    return Advice(learning.id, learning.score, commands, avoid)


def next_command(advice: Advice, played: Counter[str], valid: Sequence[str]) -> str | None:
    """The learning's step nearest its end that is valid now and not played yet in
    this attempt. A success pattern reached its goal at its last step; the steps
    before it were there to make the later ones possible, or were detours, and an
    agent cannot tell which, so it skips ahead as far as the game allows."""
    left = Counter(played)
    unplayed = []
    for command in advice.commands:
        if left[command] > 0:
            left[command] -= 1
        else:
            unplayed.append(command)
    return next((c for c in reversed(unplayed) if c in valid), None)


def forbids(advice: Advice, played: Counter[str], command: str) -> bool:
    """An avoid learning forbids the step that would complete its sequence."""
    *before, last = advice.commands
    return advice.avoid and command == last and all(played[c] > 0 for c in before)


def follow(
    advice: Sequence[Advice], attempt: Attempt, valid: Sequence[str]
) -> tuple[str, int] | None:
    """The step of the best-ranked success learning that no avoid learning ranked
    at least as high forbids, with the learning's id. Once FOLLOWED_MAX learnings
    were followed in an attempt, only those: chaining every learning handed back
    would spend the episode replaying other attempts' detours."""
    played = attempt.played()
    for a in advice:
        if a.avoid or not attempt.may_follow(a.id):
            continue
        command = next_command(a, played, valid)
        if command is not None and not any(
            forbids(b, played, command) and b.score >= a.score for b in advice
        ):
            return command, a.id
    return None


def allowed(advice: Sequence[Advice], played: Counter[str], valid: Sequence[str]) -> list[str]:
    kept = [c for c in valid if not any(forbids(a, played, c) for a in advice)]
    return kept or list(valid)


@dataclass
class Usage:
    """How much of what kaizen did came from Kaizen, per phase."""

    attempts: int = 0
    offered: int = 0
    playable: int = 0
    applied: int = 0
    actions: int = 0
    from_learnings: int = 0

    def count(self, attempt: Attempt, playable: bool) -> None:
        self.attempts += 1
        self.offered += bool(attempt.offered)
        self.playable += playable
        self.applied += bool(attempt.applied)
        self.actions += len(attempt.actions)
        self.from_learnings += attempt.from_learnings


class KaizenAgent:
    name = "kaizen"
    reads_gold = False

    def __init__(self, kz: KaizenClient, game: Game, rng: random.Random) -> None:
        self.kz = kz
        self.game = game
        self.rng = rng
        self.recording = True
        self.advice: list[Advice] = []
        self.usage: dict[str, Usage] = {"train": Usage(), "test": Usage()}
        self.examples: list[dict[str, Any]] = []
        self.pending: dict[str, Any] | None = None

    def start(self, world: World) -> None:
        pass

    async def begin(self, task: str, goal: str) -> Attempt:
        found = await self.kz.get_relevant_learnings(task, agent_type=AGENT_TYPE, limit=QUERY_LIMIT)
        self.advice = [a for a in map(advice_from, found) if a is not None]
        attempt = Attempt(task, goal, offered=[x.id for x in found])
        self.pending = self._example(attempt, found)
        return attempt

    def choose(self, attempt: Attempt, seen: Seen, tried: set[str]) -> str:
        chosen = follow(self.advice, attempt, seen.valid)
        if chosen is not None:
            attempt.apply(chosen[1])
            return chosen[0]
        return heuristic(allowed(self.advice, attempt.played(), seen.valid), tried, self.rng)

    async def end(self, attempt: Attempt, success: bool) -> None:
        phase = "train" if self.recording else "test"
        self.usage[phase].count(attempt, any(not a.avoid for a in self.advice))
        self._finish_example(attempt, success)
        if self.recording:
            await self.kz.record_interactions([interaction(self.game, attempt, success)])
            await settled(self.kz)

    def _example(self, attempt: Attempt, found: list[ScoredLearning]) -> dict[str, Any] | None:
        """Unseen-seed attempts kept for the results file, EXAMPLES_PER_GOAL per verb."""
        verb = attempt.goal.split(" ", 1)[0]
        kept = sum(1 for e in self.examples if e["goal"].split(" ", 1)[0] == verb)
        if self.recording or kept >= EXAMPLES_PER_GOAL:
            return None
        return {"task": attempt.task, "goal": attempt.goal, "learnings": [brief(x) for x in found]}

    def _finish_example(self, attempt: Attempt, success: bool) -> None:
        if self.pending is not None:
            played = [render(a) for a in attempt.actions]
            self.examples.append({**self.pending, "played": played, "success": success})
        self.pending = None


def brief(learning: ScoredLearning) -> dict[str, Any]:
    return {
        "id": learning.id,
        "type": str(learning.type),
        "avoid": learning.avoid,
        "score": round(learning.score, 4),
        "confidence": round(learning.confidence, 3),
        "steps": [render(s) for s in learning.steps],
        "actions": list(learning.actions),
        "slots": list(learning.slots),
        "task_example": learning.task_example,
    }


def interaction(game: Game, attempt: Attempt, success: bool) -> Interaction:
    return Interaction(
        agent_type=AGENT_TYPE,
        task_description=attempt.task,
        actions_taken=attempt.actions,
        results=attempt.results,
        success=success,
        completion_time=round(time.perf_counter() - attempt.started, 4),
        errors_encountered=sum(1 for r in attempt.results if not r["success"]),
        metadata={"bench": "textgames", "game": game.name, "goal": attempt.goal},
        offered_learnings=attempt.offered,
        applied_learnings=attempt.applied,
    )


async def settled(kz: KaizenClient, timeout: float = 2.0) -> None:
    """Wait until the extractor has folded everything recorded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await kz.stats()).extractor.backlog == 0:
            return
        await asyncio.sleep(0.005)


# -- orchestration -------------------------------------------------------------------


@dataclass(frozen=True)
class Seeds:
    train: list[int]
    test: list[int]


def pick_seeds(world: World, train: int, test: int, rng: random.Random) -> Seeds:
    return Seeds(
        rng.sample(world.seeds("train"), train),
        rng.sample(world.seeds("test"), test),
    )


@dataclass
class Run:
    """One agent's episodes on one game."""

    train: list[Episode] = field(default_factory=list)
    test: list[Episode] = field(default_factory=list)
    seconds: float = 0.0


async def run_agent(world: World, game: Game, agent: Agent, seeds: Seeds) -> Run:
    run = Run()
    started = time.perf_counter()
    run.train = [await play(world, game, agent, s, "train") for s in seeds.train]
    if isinstance(agent, KaizenAgent):
        agent.recording = False  # unseen seeds score what training taught, not what they teach
    run.test = [await play(world, game, agent, s, "test") for s in seeds.test]
    run.seconds = time.perf_counter() - started
    return run


async def run_kaizen(world: World, game: Game, seeds: Seeds, seed: int) -> tuple[Run, KaizenAgent]:
    server = await start_server("--extractor-interval-s", "0.01")
    try:
        async with KaizenClient(server.url) as kz:
            agent = KaizenAgent(kz, game, random.Random(f"{seed}:{game.name}:kaizen"))
            run = await run_agent(world, game, agent, seeds)
    finally:
        await server.stop()
    return run, agent


async def run_game(world: World, game: Game, train: int, test: int, seed: int) -> dict[str, Any]:
    world.load(game)
    seeds = pick_seeds(world, train, test, random.Random(f"{seed}:{game.name}"))
    runs = {
        "baseline": await run_agent(
            world, game, Baseline(random.Random(f"{seed}:{game.name}:baseline")), seeds
        ),
        "oracle": await run_agent(world, game, Oracle(), seeds),
    }
    runs["kaizen"], agent = await run_kaizen(world, game, seeds, seed)
    return summarise(game, runs, agent)


# -- metrics and report ---------------------------------------------------------------


AGENTS = ("baseline", "kaizen", "oracle")


def rate(episodes: Sequence[Episode]) -> float:
    return sum(e.won for e in episodes) / len(episodes) if episodes else 0.0


def windows(runs: Mapping[str, Run]) -> list[dict[str, Any]]:
    n = len(runs["baseline"].train)
    rows: list[dict[str, Any]] = []
    for start in range(0, n, WINDOW):
        row: dict[str, Any] = {"episodes": f"{start + 1}-{min(start + WINDOW, n)}"}
        rows.append(row | {a: rate(runs[a].train[start : start + WINDOW]) for a in AGENTS})
    unseen = {a: rate(runs[a].test) for a in AGENTS}
    return [*rows, {"episodes": f"unseen ({len(runs['baseline'].test)})", **unseen}]


def targets(runs: Mapping[str, Run]) -> dict[str, Any]:
    b, k, o = (rate(runs[a].test) for a in AGENTS)
    within = len(runs["kaizen"].train) <= TARGET_EPISODES
    ratio = k / o if o else 0.0
    return {
        "kaizen_vs_oracle": {
            "target": f"kaizen ≥ {TARGET_RATIO} x oracle on unseen seeds",
            "ratio": ratio,
            "met": within and ratio >= TARGET_RATIO,
        },
        "kaizen_vs_baseline": {
            "target": f"kaizen ≥ baseline + {TARGET_GAIN} on unseen seeds",
            "gain": k - b,
            "met": within and k - b >= TARGET_GAIN,
        },
    }


def endings(episodes: Sequence[Episode]) -> dict[str, int]:
    return dict(Counter(e.ending for e in episodes).most_common())


def by_goal(episodes: Sequence[Episode]) -> dict[str, str]:
    """Sub-goals reached / attempted, by the sub-goal's verb ("roast", "take" …)."""
    tally: dict[str, list[int]] = {}
    for goal, reached in (g for e in episodes for g in e.goals):
        counts = tally.setdefault(goal.split(" ", 1)[0], [0, 0])
        counts[0] += reached
        counts[1] += 1
    return {verb: f"{k}/{n}" for verb, (k, n) in sorted(tally.items())}


def summarise(game: Game, runs: Mapping[str, Run], agent: KaizenAgent) -> dict[str, Any]:
    return {
        "game": game.name,
        "params": game.params,
        "step_limit": game.step_limit,
        "windows": windows(runs),
        "targets": targets(runs),
        "seconds": {a: round(runs[a].seconds, 1) for a in AGENTS},
        "unseen_endings": {a: endings(runs[a].test) for a in AGENTS},
        "unseen_goals": {a: by_goal(runs[a].test) for a in AGENTS},
        "kaizen_goals_by_window": [
            by_goal(runs["kaizen"].train[i : i + WINDOW])
            for i in range(0, len(runs["kaizen"].train), WINDOW)
        ],
        "kaizen_usage": {p: vars(u) for p, u in agent.usage.items()},
        "examples": agent.examples,
    }


def report(result: Mapping[str, Any]) -> None:
    print(f"\n{result['game']} ({result['params'] or 'defaults'}; {result['step_limit']} steps)")
    print(table(result["windows"], ["episodes", *AGENTS]))
    for goal in result["targets"].values():
        value = f"ratio {goal['ratio']:.2f}" if "ratio" in goal else f"gain {goal['gain']:+.2f}"
        print(f"{goal['target']}: {value}; met: {goal['met']}")
    test = result["kaizen_usage"]["test"]
    print(
        f"kaizen on unseen seeds: {test['from_learnings']}/{test['actions']} steps from "
        f"learnings; {test['applied']}/{test['attempts']} attempts applied one; endings "
        f"{result['unseen_endings']['kaizen']}; seconds {result['seconds']}"
    )
    for agent in AGENTS[:2]:
        print(f"{agent} sub-goals reached on unseen seeds: {result['unseen_goals'][agent]}")


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, help="training episodes (300; 100 with --quick)")
    parser.add_argument("--test", type=int, help="unseen-seed episodes (100; 40 with --quick)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="fewer episodes")
    parser.add_argument("--games", nargs="+", choices=[g.name for g in GAMES], help="all if unset")
    args = parser.parse_args()
    games = [g for g in GAMES if args.games is None or g.name in args.games]
    train = args.episodes or (100 if args.quick else 300)
    test = args.test or (40 if args.quick else 100)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    world = World()
    try:
        results = [await run_game(world, g, train, test, args.seed) for g in games]
    finally:
        world.close()
    for result in results:
        report(result)
    elapsed = time.perf_counter() - started
    params = {"episodes": train, "test": test, "seed": args.seed, "quick": args.quick}
    payload = {"params": params, "seconds": round(elapsed, 1), "games": results}
    print(f"\n{elapsed:.0f} s; wrote {write_results('textgames', payload)}")


if __name__ == "__main__":
    asyncio.run(main())
