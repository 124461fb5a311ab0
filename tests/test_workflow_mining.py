"""The workflow learner's pure core: events and their commands, sessions
grouped and closed on an explicit clock, outcomes inferred and reported, frequent
command sequences, next-command prediction, stats and state round-trips."""

import json
import math
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.workflow_stream import (
    FrequencyBaseline,
    generate,
    next_command_top3_accuracy,
    sessions_of,
    split_held_out,
    train,
)
from server.core.stats import wilson_lower_bound
from server.workflows import (
    CloseReason,
    Event,
    NextCommandModel,
    Outcome,
    RunGrouper,
    WorkflowConfig,
    WorkflowLearner,
    WorkflowMiner,
    WorkflowRun,
    canonical_command,
    command_of,
    event_from_dict,
    infer_outcome,
)
from server.workflows.events import query_token
from server.workflows.mining import contiguous_patterns
from server.workflows.outcome import indicators
from server.workflows.predict import OTHER

T0 = 1_767_225_600.0
IDLE = 300.0


def event(kind: str, at: float, session: str = "s", tenant: str = "t", **metadata: Any) -> Event:
    return Event(tenant, session, kind, at, dict(metadata))


def shell(line: str, at: float, session: str = "s", tenant: str = "t") -> Event:
    return event("process_start", at, session, tenant, command=line)


def closed(commands: Sequence[str], session: str = "s", ok: bool = True) -> WorkflowRun:
    """A closed session with these commands, as the grouper would hand it over."""
    outcome = Outcome.SUCCESS if ok else Outcome.FAILURE
    return WorkflowRun(
        "t",
        session,
        [],
        list(commands),
        list(commands),
        T0,
        T0 + 60,
        outcome,
        None,
        CloseReason.IDLE,
    )


# -- events and commands ------------------------------------------------------------


def test_seed_event_types_map_to_the_seeds_commands() -> None:
    assert command_of(event("file_open", T0)) == "open_file"
    assert command_of(event("code_edit", T0)) == "edit_code"
    assert command_of(event("git_commit", T0)) == "commit_changes"
    assert command_of(event("test_run", T0)) == "run_tests"
    assert command_of(event("process_start", T0)) == "execute_command"


def test_process_end_is_no_command_and_metadata_commands_are_normalised() -> None:
    assert command_of(event("process_end", T0, exit_code=0)) is None
    assert command_of(shell("pytest -x tests/test_api.py", T0)) == "pytest"
    assert command_of(event("test_run", T0, command="python3 -m pytest -q")) == "pytest"
    assert command_of(event("deploy", T0)) == "deploy"
    assert command_of(event("python3", T0)) == "python"
    assert command_of(event("time", T0)) == "time"  # a wrapper alone names nothing else
    assert command_of(event("ci.run", T0, command="make test")) == "make test"


@pytest.mark.parametrize(
    ("line", "token"),
    [
        ("git commit -m 'fix: a; b'", "git commit"),
        ("git -C ../repo push origin main", "git push"),
        ("/usr/bin/git status", "git status"),
        ("FOO=1 sudo -E npm run build", "npm run build"),
        ("npm test -- --watch=false", "npm test"),
        ("npx jest --ci", "jest"),
        ("uv run pytest", "pytest"),
        ("cargo test -- --nocapture", "cargo test"),
        ("make -j4 V=1 test", "make test"),
        ("cd src && make", "cd"),
        ("cat app.log | grep ERROR", "cat"),
        ("ls -la", "ls"),
        ("python manage.py migrate", "python"),
        ('echo "unbalanced', "echo"),
    ],
)
def test_canonical_command(line: str, token: str) -> None:
    assert canonical_command(line) == token


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=40))
def test_canonical_command_is_idempotent(line: str) -> None:
    token = canonical_command(line)
    assert canonical_command(token) == token


def test_event_from_dict_validates() -> None:
    raw = {"session_id": "s1", "event_type": "file_save", "timestamp": "2026-01-01T00:00:10Z"}
    parsed = event_from_dict("t", raw)
    assert (parsed.session_id, parsed.event_type, parsed.timestamp) == ("s1", "file_save", T0 + 10)
    assert parsed.metadata == {}
    for bad in (
        {**raw, "event_type": "Not A Type"},
        {**raw, "session_id": ""},
        {**raw, "timestamp": True},
        {**raw, "timestamp": math.inf},
        {**raw, "metadata": [1]},
    ):
        with pytest.raises(ValueError):
            event_from_dict("t", bad)


# -- sessions -----------------------------------------------------------------------


def test_sessions_close_after_the_idle_time_on_the_callers_clock() -> None:
    grouper = RunGrouper(IDLE)
    for i, kind in enumerate(("file_open", "code_edit", "file_save")):
        grouper.add(event(kind, T0 + 10 * i))
    assert grouper.close_idle(T0 + 20 + IDLE - 0.001) == []
    (session,) = grouper.close_idle(T0 + 20 + IDLE)
    assert session.commands == ["open_file", "edit_code", "save_file"]
    assert (session.start, session.end, session.closed_by) == (T0, T0 + 20, CloseReason.IDLE)
    assert len(grouper) == 0


def test_activity_is_the_arrival_time_when_the_caller_gives_one() -> None:
    grouper = RunGrouper(IDLE)
    grouper.add(event("code_edit", T0 - 3600), now=T0)  # a replay of old events
    assert grouper.close_idle(T0 + 1) == []
    assert len(grouper.close_idle(T0 + IDLE)) == 1


def test_sessions_group_per_tenant_and_session_id() -> None:
    grouper = RunGrouper(IDLE)
    grouper.add(event("code_edit", T0, "a", "t1"))
    grouper.add(event("file_save", T0 + 1, "a", "t2"))
    grouper.add(event("file_save", T0 + 2, "b", "t1"))
    grouper.add(event("file_save", T0 + 3, "a", "t1"))
    done = {(s.tenant, s.session_id): s.commands for s in grouper.close_idle(T0 + 1000)}
    assert done == {
        ("t1", "a"): ["edit_code", "save_file"],
        ("t2", "a"): ["save_file"],
        ("t1", "b"): ["save_file"],
    }


def test_out_of_order_events_take_their_place_in_time() -> None:
    grouper = RunGrouper(IDLE)
    for at, line in ((T0 + 30, "git commit"), (T0 + 10, "pytest"), (T0 + 20, "ls")):
        grouper.add(shell(line, at))
    (session,) = grouper.close_all()
    assert session.commands == ["pytest", "ls", "git commit"]
    assert (session.start, session.end) == (T0 + 10, T0 + 30)


def test_idle_close_is_exact_when_activity_goes_back_across_sessions() -> None:
    grouper = RunGrouper(IDLE)
    grouper.add(event("code_edit", T0 + 100, "late"))
    grouper.add(event("code_edit", T0, "early"))  # a skewed clock: older than "late"
    assert [s.session_id for s in grouper.close_idle(T0 + IDLE)] == ["early"]
    assert [s.session_id for s in grouper.close_idle(T0 + 100 + IDLE)] == ["late"]


def test_a_full_session_closes_and_its_id_goes_on() -> None:
    grouper = RunGrouper(IDLE, max_events=3)
    for i in range(5):
        grouper.add(event("code_edit", T0 + i))
    assert grouper.is_open("t", "s")
    (full,) = grouper.close_idle(T0 + 5)
    assert (full.closed_by, len(full.events)) == (CloseReason.FULL, 3)
    assert grouper.commands("t", "s") == ["edit_code", "edit_code"]


def test_opening_past_the_bound_evicts_the_least_recently_active() -> None:
    grouper = RunGrouper(IDLE, max_open=2)
    grouper.add(event("code_edit", T0, "a"))
    grouper.add(event("code_edit", T0 + 1, "b"))
    grouper.add(event("code_edit", T0 + 2, "a"))
    grouper.add(event("code_edit", T0 + 3, "c"))
    (evicted,) = grouper.close_idle(T0 + 4)
    assert (evicted.session_id, evicted.closed_by) == ("b", CloseReason.EVICTED)
    assert len(grouper) == 2


def test_explicit_close() -> None:
    grouper = RunGrouper(IDLE)
    grouper.add(event("code_edit", T0))
    assert grouper.close("t", "other") is None
    closed_now = grouper.close("t", "s")
    assert closed_now is not None and closed_now.closed_by is CloseReason.EXPLICIT
    assert len(grouper) == 0


def test_open_sessions_survive_a_state_round_trip() -> None:
    grouper = RunGrouper(IDLE)
    grouper.add(shell("pytest", T0))
    grouper.add(event("file_delete", T0 + 5, path="x.py"))
    grouper.report_outcome("t", "s", Outcome.SUCCESS)
    again = RunGrouper(IDLE)
    again.restore(json.loads(json.dumps(grouper.to_state())))
    assert again.close_idle(T0 + 5 + IDLE - 1) == []
    (session,) = again.close_idle(T0 + 5 + IDLE)
    assert session.commands == ["pytest", "delete_file"]
    assert (session.inferred, session.outcome) == (Outcome.FAILURE, Outcome.SUCCESS)


# -- outcomes -----------------------------------------------------------------------


def test_outcome_inference_follows_seed_004() -> None:
    assert infer_outcome(["open_file", "commit_changes"]) is Outcome.SUCCESS
    assert infer_outcome(["open_file", "edit_code"]) is Outcome.SUCCESS  # the default
    assert infer_outcome(["edit_code", "delete_file"]) is Outcome.FAILURE
    assert infer_outcome(["commit_changes", "delete_file"]) is Outcome.FAILURE
    assert indicators(["save_file", "delete_file", None]) == ({"save_file"}, {"delete_file"})


def test_sessions_infer_from_event_types_and_reports_override() -> None:
    grouper = RunGrouper(IDLE)
    grouper.add(shell("rm -rf build", T0, "shell"))  # no file_delete event: still success
    grouper.add(event("file_delete", T0, "deleted"))
    grouper.add(event("file_delete", T0, "reported"))
    grouper.add(event("task_end", T0 + 1, "reported", outcome="success"))
    grouper.add(event("git_commit", T0, "told"))
    grouper.report_outcome("t", "told", Outcome.FAILURE)
    outcomes = {
        s.session_id: (s.inferred, s.outcome, s.outcome_source) for s in grouper.close_all()
    }
    assert outcomes == {
        "shell": (Outcome.SUCCESS, Outcome.SUCCESS, "inferred"),
        "deleted": (Outcome.FAILURE, Outcome.FAILURE, "inferred"),
        "reported": (Outcome.FAILURE, Outcome.SUCCESS, "reported"),
        "told": (Outcome.SUCCESS, Outcome.FAILURE, "reported"),
    }


# -- mining -------------------------------------------------------------------------

STREAM = [
    ("s1", ["a", "b", "c"], True),
    ("s2", ["a", "b", "c", "d"], True),
    ("s3", ["x", "a", "b", "c"], False),
    ("s4", ["a", "b", "d", "a", "b", "d"], True),
]


def mined(stream: Sequence[tuple[str, list[str], bool]], **params: Any) -> WorkflowMiner:
    miner = WorkflowMiner(**params)
    for at, (sid, commands, ok) in enumerate(stream):
        miner.learn(sid, commands, ok, T0 + at)
    return miner


def test_mining_finds_exactly_the_frequent_sequences() -> None:
    found = {p.commands: p for p in mined(STREAM).patterns(closed=False)}
    assert set(found) == {("a", "b"), ("b", "c"), ("a", "b", "c")}
    ab, abc = found["a", "b"], found["a", "b", "c"]
    assert (ab.support, ab.successes) == (4, 3)  # twice in s4, counted once
    assert (abc.support, abc.successes, abc.success_rate) == (3, 2, 2 / 3)
    assert abc.confidence == wilson_lower_bound(2, 3)
    assert (abc.first_seen, abc.last_seen, abc.examples) == (T0, T0 + 2, ("s1", "s2", "s3"))
    assert ab.examples == ("s2", "s3", "s4")


def test_closed_patterns_leave_out_those_an_equally_supported_one_contains() -> None:
    listed = [p.commands for p in mined(STREAM).patterns()]
    assert listed == [("a", "b"), ("a", "b", "c")]
    assert [p.commands for p in mined(STREAM).patterns(min_support=4)] == [("a", "b")]
    assert mined(STREAM).patterns(min_length=3, closed=False)[0].commands == ("a", "b", "c")


def test_sessions_under_three_commands_are_not_learned() -> None:
    miner = WorkflowMiner()
    assert not miner.learn("short", ["a", "b"], True, T0)
    assert miner.absorb(closed(["a", "b", "c"]))
    assert (miner.sessions, miner.support(["a", "b"])) == (1, 1)


def test_a_late_report_moves_a_learned_session_between_outcomes() -> None:
    miner = mined(STREAM)
    assert miner.revise("s3", True)
    assert not miner.revise("never", True)
    pattern = miner.pattern(["a", "b", "c"])
    assert pattern is not None and pattern.successes == 3


sessions_strategy = st.lists(
    st.lists(st.sampled_from("abcd"), min_size=3, max_size=12), min_size=1, max_size=25
)


def true_support(pattern: tuple[str, ...], sessions: list[list[str]]) -> int:
    return sum(pattern in contiguous_patterns(s, len(pattern), len(pattern)) for s in sessions)


@settings(max_examples=60)
@given(sessions_strategy)
def test_supports_are_exact_and_monotone(sessions: list[list[str]]) -> None:
    miner = mined([(f"s{i}", s, True) for i, s in enumerate(sessions)], max_length=4)
    for pattern in miner.patterns(min_support=1, limit=None, closed=False):
        assert pattern.support == true_support(pattern.commands, sessions)
        for inner in contiguous_patterns(pattern.commands, 2, len(pattern.commands) - 1):
            assert miner.support(inner) >= pattern.support


@settings(max_examples=60)
@given(sessions_strategy, st.sampled_from([0.5, 0.25, 0.1]), st.integers(10, 40))
def test_bounded_counts_bracket_the_truth(
    sessions: list[list[str]], epsilon: float, cap: int
) -> None:
    stream = [(f"s{i}", s, True) for i, s in enumerate(sessions)]
    miner = mined(stream, epsilon=epsilon, max_tallies=cap, max_length=3)
    assert len(miner) <= cap
    for p in miner.patterns(min_support=1, limit=None, closed=False):
        assert p.support <= true_support(p.commands, sessions) <= p.support + p.support_error


def test_lossy_counting_forgets_rare_sequences_and_keeps_frequent_ones() -> None:
    stream = [(f"s{i}", ["a", "b", "c", f"rare{i}"], True) for i in range(40)]
    miner = mined(stream, epsilon=0.1)
    assert miner.support(["a", "b", "c"]) == 40
    assert miner.support(["c", "rare0"]) == 0
    assert len(miner) == 3  # session 40 ends a bucket: every rare run is gone


def test_miner_state_round_trip() -> None:
    miner = mined(STREAM[:3])
    again = WorkflowMiner.from_state(json.loads(json.dumps(miner.to_state())))
    assert again.patterns(limit=None) == miner.patterns(limit=None)
    for m in (miner, again):
        m.learn(*STREAM[3][:2], True, T0 + 9)
        m.revise("s3", True)
    assert again.patterns(limit=None) == miner.patterns(limit=None)
    assert again.frequent_count() == miner.frequent_count() == 3


# -- prediction ---------------------------------------------------------------------


def model_of(sessions: Sequence[Sequence[str]], **params: Any) -> NextCommandModel:
    model = NextCommandModel(**params)
    for commands in sessions:
        model.learn(commands)
    return model


WORK = [["edit", "save", "test", "commit"]] * 6 + [["edit", "save", "test", "edit", "save"]] * 2


def test_predictions_are_ordered_and_sum_to_at_most_one() -> None:
    predicted = model_of(WORK).predict(["edit", "save"], k=3)
    assert predicted[0][0] == "test"
    probabilities = [p for _, p in predicted]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0 < sum(probabilities) <= 1
    assert model_of(WORK).predict(["save", "test"], k=1)[0][0] == "commit"


def test_longer_contexts_disambiguate() -> None:
    model = model_of([["x", "a", "b"]] * 5 + [["y", "a", "c"]] * 5, session_boost=0)
    assert model.predict(["x", "a"], 1)[0][0] == "b"
    assert model.predict(["y", "a"], 1)[0][0] == "c"
    both = dict(model.predict(["a"], 2))
    assert both["b"] == pytest.approx(both["c"])


def test_unseen_contexts_back_off() -> None:
    model = model_of(WORK)
    assert model.predict(["never-seen"]) == model.predict([])
    assert model.predict(["never-seen", "save"]) == model.predict(["save"])
    assert model.probability("never-seen", ["edit"]) == 0.0
    assert NextCommandModel().predict(["edit"]) == []


def test_the_session_cache_prefers_commands_the_session_used() -> None:
    sessions = [["save", "pytest"]] * 5 + [["save", "jest"]] * 5
    plain, cached = model_of(sessions, session_boost=0), model_of(sessions)
    assert plain.probability("pytest", ["jest", "save"]) == pytest.approx(0.5, abs=0.05)
    assert cached.predict(["jest", "save"], 1)[0][0] == "jest"


def test_the_session_cache_reads_the_ids_history() -> None:
    sessions = [["save", "pytest"]] * 5 + [["save", "jest"]] * 5
    model = model_of(sessions)
    assert model.predict(["save"], 1, history=["jest"])[0][0] == "jest"
    assert model.predict(["save"], 1, history=["pytest!"])[0][0] == "pytest"


def test_a_failed_command_is_a_context_of_its_own() -> None:
    model = model_of([["pytest!", "edit", "pytest", "git add"]] * 4, session_boost=0)
    assert model.predict(["pytest!"], 1)[0][0] == "edit"
    assert model.predict(["pytest"], 1)[0][0] == "git add"
    assert {c for c, _ in model.predict([], 5)} == {"pytest", "edit", "git add"}
    assert model.probability("pytest!", []) == 0.0


def test_contexts_mark_what_failed() -> None:
    events = [
        event("test_run", T0, command="pytest -x", passed=False),
        event("code_edit", T0 + 1),
        shell("make build", T0 + 2),
        event("process_end", T0 + 3, exit_code=2),
        shell("git add .", T0 + 4),
        event("process_end", T0 + 5, exit_code=0),
        event("build_start", T0 + 6, ok=False),
    ]
    grouper = RunGrouper(IDLE)
    for e in events:
        grouper.add(e)
    marked = ["pytest!", "edit_code", "make build!", "git add", "build_project!"]
    assert grouper.contexts("t", "s") == marked
    (session,) = grouper.close_all()
    assert session.contexts == marked
    assert session.commands == ["pytest", "edit_code", "make build", "git add", "build_project"]


@pytest.mark.parametrize(
    ("item", "token"),
    [("python -m pytest -x!", "pytest!"), (" pytest ", "pytest"), ("git add .", "git add")],
)
def test_query_tokens(item: str, token: str) -> None:
    assert query_token(item) == token


@settings(max_examples=50)
@given(
    st.lists(st.lists(st.sampled_from("abcde"), min_size=1, max_size=10), max_size=15),
    st.lists(st.sampled_from(["a", "b!", "c", "d!", "e", "f", "z"]), max_size=6),
    st.integers(1, 5),
    st.sampled_from([0.0, 2.0]),
)
def test_the_distribution_is_proper(
    sessions: list[list[str]], after: list[str], order: int, boost: float
) -> None:
    model = model_of(sessions, order=order, session_boost=boost)
    known = {c for s in sessions for c in s}
    total = sum(model.probability(c, after) for c in known)
    assert total == pytest.approx(1.0) if known else total == 0
    top = model.predict(after, k=3)
    assert sum(p for _, p in top) <= 1 + 1e-9
    best = sorted(known, key=lambda c: (-model.probability(c, after), c))[:3]
    assert [c for c, _ in top] == best


def test_model_bounds() -> None:
    model = model_of([["a", "b", "c", "d", "e"]] * 3, max_vocabulary=3, max_contexts=6)
    assert model.vocabulary == 4  # a, b, c and OTHER
    assert all(c != OTHER for c, _ in model.predict(["c"], k=5))
    assert model.contexts <= 6


def test_model_state_round_trip() -> None:
    model = model_of(WORK)
    again = NextCommandModel.from_state(json.loads(json.dumps(model.to_state())))
    for after in (["edit"], ["edit", "save"], ["save", "test"], []):
        assert again.predict(after, 5) == model.predict(after, 5)


# -- the learner --------------------------------------------------------------------


def work_session(learner: WorkflowLearner, session: str, at: float, tenant: str = "t") -> float:
    steps: list[tuple[str, dict[str, Any]]] = [
        ("file_open", {}),
        ("code_edit", {}),
        ("file_save", {}),
        ("test_run", {"command": "pytest -x"}),
        ("process_start", {"command": "git add -A"}),
        ("process_end", {"exit_code": 0}),
        ("git_commit", {}),
    ]
    for kind, metadata in steps:
        learner.add(Event(tenant, session, kind, at, metadata))
        at += 10
    return at


def test_the_learner_end_to_end() -> None:
    learner = WorkflowLearner()
    at = T0
    for i in range(4):
        at = work_session(learner, f"s{i}", at) + IDLE
    learner.add(Event("t", "short", "code_edit", at, {}))
    learned = learner.tick(at + IDLE)
    assert [s.learned for s in learned] == [True] * 4 + [False]
    listed = learner.patterns("t")
    assert [p.commands for p in listed] == [
        ("edit_code", "save_file", "pytest", "git add", "commit_changes"),
        ("open_file", "edit_code", "save_file", "pytest", "git add"),
    ]  # the closed ones: every shorter run is in 4 sessions too
    assert all((p.support, p.success_rate) == (4, 1.0) for p in listed)
    assert learner.predict("t", ["pytest -q", "git add ."], 1)[0][0] == "commit_changes"
    assert learner.patterns("other") == [] and learner.predict("other", ["pytest"]) == []
    stats = learner.stats("t")
    assert (stats.events_processed, stats.sessions_created, stats.sessions_closed) == (29, 5, 5)
    assert (stats.sessions_learned, stats.sessions_skipped, stats.active_sessions) == (4, 1, 0)
    assert (stats.patterns_learned, stats.commands_known) == (14, 6)  # 5 + 4 + 3 + 2 runs
    assert learner.stats().seed_view(running=True) == {
        "running": True,
        "active_sessions": 0,
        "stats": {
            "events_processed": 29,
            "sessions_created": 5,
            "patterns_learned": 14,
            "errors": 0,
        },
    }


def test_the_learner_keeps_tenants_apart_and_counts_errors() -> None:
    learner = WorkflowLearner(WorkflowConfig(min_support=1))
    work_session(learner, "s", T0, tenant="a")
    learner.add_raw("b", {"session_id": "s", "event_type": "code_edit", "timestamp": T0})
    with pytest.raises(ValueError):
        learner.add_raw("b", {"session_id": "s", "event_type": "BAD", "timestamp": T0})
    assert learner.predict_session("a", "s") is not None
    learner.flush()
    assert learner.patterns("a") and not learner.patterns("b")
    assert (learner.stats("b").errors, learner.stats("b").sessions_skipped) == (1, 1)
    assert learner.stats().events_processed == 8


def test_the_learner_applies_late_reports_and_round_trips() -> None:
    learner = WorkflowLearner()
    at = T0
    for i in range(3):
        at = work_session(learner, f"s{i}", at) + IDLE
    learner.tick(at)
    assert learner.report_outcome("t", "s1", Outcome.FAILURE)
    assert not learner.report_outcome("t", "unknown", Outcome.FAILURE)
    assert learner.patterns("t")[0].successes == 2
    work_session(learner, "open", at)
    again = WorkflowLearner.from_state(json.loads(json.dumps(learner.to_state())))
    assert again.patterns("t") == learner.patterns("t")
    assert again.predict("t", ["edit_code"]) == learner.predict("t", ["edit_code"])
    assert again.stats("t") == learner.stats("t")
    assert [s.session_id for s in again.flush()] == ["open"]


def test_the_learner_keeps_each_ids_history_for_the_cache() -> None:
    learner = WorkflowLearner()
    at = T0
    for i in range(3):
        at = work_session(learner, f"s{i}", at) + IDLE
    learner.add(shell("go test ./...", at, "dev"))
    learner.tick(at + IDLE)
    assert learner.history("t", "dev") == ["go test"]
    assert learner.predict_session("t", "dev") is not None  # closed, but remembered
    assert learner.predict_session("t", "nobody") is None
    learner.add(shell("ls", at + 2 * IDLE, "dev"))
    assert learner.history("t", "dev") == ["go test", "ls"]
    again = WorkflowLearner.from_state(json.loads(json.dumps(learner.to_state())))
    assert again.history("t", "dev") == learner.history("t", "dev")


def test_the_history_is_bounded() -> None:
    learner = WorkflowLearner(WorkflowConfig(history_sessions=2, session_window=3))
    for i in range(3):
        for n, line in enumerate(["a", "b", "c", "d"]):
            learner.add(shell(line, T0 + n, f"s{i}"))
    learner.flush()
    assert learner.history("t", "s0") == []
    assert learner.history("t", "s2") == ["b", "c", "d"]


# -- the bench stream ---------------------------------------------------------------


def test_the_bench_stream_is_interleaved_and_learnable() -> None:
    stream = generate(7, sessions=240)
    assert stream == generate(7, sessions=240)
    times = [e["timestamp"] for _, e in stream]
    assert times == sorted(times)
    assert len({sid.split("-")[0] for sid, _ in stream[:200]}) > 3  # developers interleave
    training, held_out = split_held_out(sessions_of(stream))
    accuracy = next_command_top3_accuracy(train(training), held_out)
    assert accuracy > next_command_top3_accuracy(FrequencyBaseline(training), held_out) + 0.1
