"""The session pipeline's pure stages: topics, preferences, training examples, logs,
and the pipeline that isolates them. Topics run with the real all-MiniLM-L6-v2
model (loaded once for this module) and with the RAKE fallback."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.chat import (
    MemoryResult,
    Message,
    PipelineReport,
    PipelineStats,
    SessionRecord,
    Stage,
    detect_preferences,
    extract_topics,
    make_log_stage,
    prepare_examples,
    run_pipeline,
    session_stages,
)
from server.chat.logs import MASTER_LOG, STATS_FILE, read_jsonl, session_log_name
from server.chat.topics import candidate_phrases
from server.chat.turns import classify_reaction, split_turns
from server.chat.words import STOPWORDS, words
from server.core.embedder import DEFAULT_MODEL, load_sentence_model

Embed = Callable[[list[str]], Any]
T0 = 1_700_000_000.0


def session(session_id: str, *turns: tuple[str, str], **metadata: dict[str, Any]) -> SessionRecord:
    """A record from (role, text) pairs; metadata["m<i>"] is message i's metadata."""
    messages = [
        Message(role, text, metadata.get(f"m{i}", {}), T0 + i)  # type: ignore[arg-type]
        for i, (role, text) in enumerate(turns)
    ]
    return SessionRecord("acme", session_id, "agent-7", T0, T0 + len(turns), messages)


DOCKER = session(
    "s-docker",
    ("user", "My two docker containers can't reach each other. One runs a Flask API."),
    (
        "assistant",
        "Containers on the default bridge network only reach each other by IP address. "
        "Create a user-defined bridge network with `docker network create appnet` and "
        "attach both containers to it; they then resolve each other by container name "
        "through Docker's embedded DNS.",
    ),
    ("user", "I created the network but the API gets connection refused on port 5432."),
    (
        "assistant",
        "Connection refused means nothing listened. Postgres must listen on all "
        "interfaces, and the API must connect to the container name, not localhost, "
        "because localhost inside a container is the container itself.",
    ),
    ("user", "Does docker compose create the network for me?"),
    (
        "assistant",
        "Yes. Docker Compose creates a default network for each project and every "
        "service joins it, so services reach each other by service name.",
    ),
)
BREAD = session(
    "s-bread",
    ("user", "My sourdough bread comes out dense and flat. I bake it in a dutch oven."),
    (
        "assistant",
        "Dense sourdough usually means under-proofed dough or a weak starter. Make sure "
        "the starter doubles within 4 to 6 hours after feeding, and let the bulk "
        "fermentation go until the dough has risen by half.",
    ),
    ("user", "How long should the bulk fermentation take in a cold kitchen?"),
    (
        "assistant",
        "In a cold kitchen bulk fermentation can take 8 to 10 hours. Use warm water in "
        "the dough and judge by the dough's volume rather than the clock.",
    ),
)
NEUTRAL = session(
    "s-neutral",
    ("user", "What is the difference between a list and a tuple in Python?"),
    ("assistant", "A list is mutable and a tuple is immutable; tuples can be dict keys."),
    ("user", "When would I pick a tuple over a list for a function result?"),
    ("assistant", "Return a tuple when the result has a fixed shape, like a pair of values."),
    ("user", "Are tuples faster to create than lists?"),
    ("assistant", "Slightly: a tuple of constants is built once when the code is compiled."),
)


@pytest.fixture(scope="module")
def minilm() -> Embed:
    model = load_sentence_model(DEFAULT_MODEL)

    def embed(texts: list[str]) -> Any:
        return model.encode(texts, normalize_embeddings=True, show_progress_bar=False)

    return embed


def text_of(phrases: list[str]) -> str:
    return " ".join(phrases)


# --- topics ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["embedding", "rake"])
def test_topics_come_from_the_session_text(minilm: Embed, method: str) -> None:
    embed = minilm if method == "embedding" else None
    docker = extract_topics(DOCKER, embed)
    bread = extract_topics(BREAD, embed)
    assert docker.method == bread.method == method
    assert re.search(r"docker|network", text_of(docker.phrases))
    assert re.search(r"sourdough|dough|bread|fermentation", text_of(bread.phrases))
    assert not set(docker.phrases) & set(bread.phrases)
    assert len(docker.topics) == 5


def test_embedding_topics_are_relevant_and_diverse(minilm: Embed) -> None:
    topics = extract_topics(DOCKER, minilm, top_k=4)
    assert topics.phrases[0] == "docker network"  # the most relevant comes first
    assert all(-1.0 <= t.score <= 1.0 for t in topics.topics)
    # MMR keeps near-duplicates of a picked phrase out
    assert not {"docker networks", "docker network create"} & set(topics.phrases)


def test_topics_fall_back_to_rake_when_the_embedder_fails() -> None:
    def broken(texts: list[str]) -> Any:
        raise RuntimeError("embedder closed")

    topics = extract_topics(DOCKER, broken)
    assert topics.method == "rake"
    assert topics.topics


def test_a_session_without_words_has_no_topics() -> None:
    empty = session("s-empty", ("user", "ok?"), ("assistant", "..."), ("tool", "docker"))
    assert extract_topics(empty).method == "none"
    assert extract_topics(empty).topics == ()


def test_code_blocks_and_urls_are_not_topics() -> None:
    text = "Use the ```python\nself.retry_budget = 3\n``` budget, see https://example.org/x"
    assert candidate_phrases(text) == ["budget"]


@given(st.text(max_size=300))
def test_candidates_are_runs_of_content_words_of_the_input(text: str) -> None:
    flattened = re.sub(r"[^\S\n]+", " ", text.lower())
    tokens = set(words(text))
    for phrase in candidate_phrases(text):
        parts = phrase.split(" ")
        assert 1 <= len(parts) <= 3
        assert phrase in flattened
        assert all(part in tokens and part not in STOPWORDS for part in parts)


@given(st.lists(st.tuples(st.sampled_from(["user", "assistant"]), st.text(max_size=80))))
def test_topic_extraction_never_fails(turns: list[tuple[str, str]]) -> None:
    result = extract_topics(session("s-any", *turns))
    assert len(result.topics) <= 5
    assert all(0.0 <= t.score <= 1.0 for t in result.topics)


# --- preferences ----------------------------------------------------------------------

LONG_ANSWER = " ".join(["The scheduler runs each ready callback in turn."] * 40)


def test_explicit_requests_set_preferences() -> None:
    record = session(
        "s-ask",
        ("user", "ELI5: what is a virtual environment? Explain step by step, show me code."),
        ("assistant", "1. Make one with python -m venv .venv\n2. Activate it\n3. pip install"),
    )
    found = detect_preferences(record).labels
    assert found == [
        "code_examples=wanted",
        "complexity=beginner",
        "explanation_style=step_by_step",
    ]
    code = detect_preferences(record).get("code_examples")
    assert code is not None and code.confidence == 0.5
    assert [(e.index, e.signal) for e in code.evidence] == [(0, "request_code")]


def test_a_too_long_reaction_asks_for_short_concise_answers() -> None:
    record = session(
        "s-long",
        ("user", "How does the asyncio event loop pick the next callback?"),
        ("assistant", LONG_ANSWER),
        ("user", "That is way too long. Can you give me the gist?"),
        ("assistant", "It pops the ready queue in order."),
        ("user", "Thanks, perfect."),
    )
    prefs = detect_preferences(record)
    length = prefs.get("response_length")
    assert length is not None and length.value == "short"
    # the explicit complaint (1.0) and the praised short answer (0.5)
    assert [(e.index, e.signal, e.weight) for e in length.evidence] == [
        (2, "too_long", 1.0),
        (4, "praise", 0.5),
    ]
    style = prefs.get("explanation_style")
    assert style is not None and style.value == "concise"


def test_praised_code_answers_show_a_taste_for_code() -> None:
    code = "Here you go:\n```python\nawait asyncio.sleep(1)\n```"
    record = session(
        "s-code",
        ("user", "How do I pause a coroutine for one second?"),
        ("assistant", code),
        ("user", "Thanks, that worked. How do I run two at once?"),
        ("assistant", "Use gather:\n```python\nawait asyncio.gather(a(), b())\n```"),
        ("user", "Perfect!"),
    )
    prefs = detect_preferences(record)
    wanted = prefs.get("code_examples")
    assert wanted is not None and wanted.value == "wanted"
    assert {e.signal for e in wanted.evidence} == {"praise"}


def test_a_re_ask_counts_against_the_answer_it_followed() -> None:
    record = session(
        "s-reask",
        ("user", "How do I undo the last git commit?"),
        ("assistant", "Git stores history as a DAG of commits."),
        ("user", "How can I undo the last commit in git?"),
    )
    assert split_turns(record)[0].reaction.signal == "re_ask"
    length = detect_preferences(record, min_support=0.0).get("response_length")
    assert length is None  # one vote against "short" never makes a preference


def test_jargon_heavy_users_are_experts() -> None:
    record = session(
        "s-jargon",
        (
            "user",
            "My k8s CNI drops packets: kube-proxy in IPVS mode, MTU 1450, eBPF hostRouting "
            "on, and conntrack_max hit. Is it the VXLAN overhead or nf_conntrack?",
        ),
        ("assistant", "Check the MTU first."),
    )
    level = detect_preferences(record).get("complexity")
    assert level is not None and level.value == "expert"
    assert level.evidence[0].signal.startswith("jargon_density=")


@pytest.mark.parametrize("record", [NEUTRAL, DOCKER, BREAD], ids=lambda r: r.session_id)
def test_neutral_sessions_show_no_preferences(record: SessionRecord) -> None:
    assert detect_preferences(record).preferences == ()


def test_conflicting_requests_cancel_out() -> None:
    record = session(
        "s-both",
        ("user", "Explain briefly how TLS works."),
        ("assistant", "Keys are agreed, then traffic is encrypted."),
        ("user", "Now explain certificate chains in detail."),
    )
    assert detect_preferences(record).get("response_length") is None


# --- training examples ----------------------------------------------------------------

GOOD_ANSWER = "Run git reset --soft HEAD~1: the commit goes, its changes stay staged."


def teaching_session() -> SessionRecord:
    return session(
        "s-teach",
        ("assistant", "Welcome! Ask me anything about git."),  # 0: before any ask
        ("user", "hi"),  # 1
        ("assistant", "Hello! How can I help?"),  # 2
        ("user", "How do I undo the last git commit?"),  # 3
        ("assistant", GOOD_ANSWER),  # 4
        ("user", "Thanks! How do I delete a remote branch?"),  # 5
        ("assistant", "Use git branch -d origin/feature to remove it everywhere."),  # 6
        ("user", "That's wrong, it only deletes the local tracking ref."),  # 7
        ("assistant", "Right: git push origin --delete feature removes the remote branch."),
        ("user", "How do I squash the last three commits?"),  # 9
        ("assistant", "Internal error: model timed out"),  # 10
        ("user", "How do I undo the last git commit?"),  # 11
        ("assistant", GOOD_ANSWER),  # 12
        ("user", "ok"),  # 13
        ("assistant", "Great."),  # 14
    )


def test_examples_keep_good_turns_and_say_why_the_others_went() -> None:
    result = prepare_examples(teaching_session())
    assert [(e.ask_index, e.reaction) for e in result.examples] == [(3, "positive"), (7, "none")]
    assert result.examples[0].to_json() == {
        "instruction": "How do I undo the last git commit?",
        "output": GOOD_ANSWER,
        "context": "s-teach",
    }
    assert [(d.ask_index, d.reason) for d in result.dropped] == [
        (1, "trivial"),
        (5, "rejected"),
        (9, "assistant_error"),
        (11, "duplicate"),
        (13, "trivial"),
    ]
    assert result.dropped_counts == {
        "trivial": 2,
        "rejected": 1,
        "assistant_error": 1,
        "duplicate": 1,
    }
    assert result.enough_for_fine_tune


def test_errors_flagged_in_metadata_and_unanswered_asks_are_dropped() -> None:
    record = session(
        "s-meta",
        ("user", "Summarise the incident report for the database outage."),
        ("assistant", "The outage began when the primary lost its disk."),
        ("user", "And the follow-up actions for the storage team?"),
        m1={"error": "tool call failed"},
    )
    assert [d.reason for d in prepare_examples(record).dropped] == [
        "assistant_error",
        "unanswered",
    ]


@given(st.text(max_size=120), st.text(max_size=120))
def test_reaction_classification_never_fails(reply: str, ask: str) -> None:
    assert classify_reaction(reply, ask).kind in {"positive", "negative", "none"}


# --- logs and the pipeline --------------------------------------------------------------


def clock(start: float = T0 + 100) -> Callable[[], float]:
    ticks = iter(range(1_000))
    return lambda: start + next(ticks)


def memory_stage(record: SessionRecord, report: PipelineReport) -> MemoryResult:
    """The service's stage, stood in for: one item per topic found before it."""
    return MemoryResult(len(report.topics.topics) if report.topics else 0)


def test_the_log_stage_writes_session_log_master_line_and_stats(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    stages = session_stages(None, store_memory=memory_stage)
    for record in (DOCKER, BREAD):
        report = run_pipeline(record, stages, log_stage=make_log_stage(logs, clock()))
        assert not report.failed
    assert [o.name for o in report.outcomes] == [
        "topics",
        "preferences",
        "memory",
        "examples",
        "log",
    ]
    session_log = logs / session_log_name("acme", "s-bread", BREAD.ended_at or 0)
    assert session_log.name == "session_log_acme.s-bread_20231114T221324Z.json"
    assert report.log is not None and report.log.session_log == session_log
    entry = orjson.loads(session_log.read_bytes())
    assert entry["messages_count"] == 4
    assert entry["memory_items_created"] == 5
    assert entry["examples_prepared"] == 2
    assert entry["failed_stages"] == []
    assert entry["improvements"][0].startswith("Extracted topics: ")
    lines = list(read_jsonl(logs / MASTER_LOG))
    assert [line["session_id"] for line in lines] == ["s-docker", "s-bread"]
    assert lines[1]["log_file"] == session_log.name
    stats = PipelineStats.load(logs)
    assert (stats.sessions_processed, stats.total_messages) == (2, 10)
    assert (stats.total_memory_items, stats.total_examples) == (10, 5)
    assert stats == report.log.stats


def test_a_failing_stage_does_not_stop_the_others_and_is_logged(tmp_path: Path) -> None:
    def broken(record: SessionRecord, report: PipelineReport) -> object:
        raise ValueError("database is locked")

    stages = [*session_stages(None)[:1], Stage("memory", broken), *session_stages(None)[1:]]
    report = run_pipeline(DOCKER, stages, log_stage=make_log_stage(tmp_path, clock()))
    assert [(o.name, o.ok) for o in report.outcomes] == [
        ("topics", True),
        ("memory", False),
        ("preferences", True),
        ("examples", True),
        ("log", True),
    ]
    assert report.examples is not None and report.memory is None
    assert report.log is not None
    entry = orjson.loads(report.log.session_log.read_bytes())
    assert entry["failed_stages"] == [
        {
            "name": "memory",
            "ok": False,
            "seconds": entry["failed_stages"][0]["seconds"],
            "error_type": "ValueError",
            "error": "database is locked",
        }
    ]
    assert report.log.stats.sessions_with_failures == 1


def test_the_log_is_written_even_when_the_run_is_interrupted(tmp_path: Path) -> None:
    def interrupted(record: SessionRecord, report: PipelineReport) -> object:
        raise KeyboardInterrupt

    stages = [Stage("topics", interrupted), *session_stages(None)]
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(BREAD, stages, log_stage=make_log_stage(tmp_path, clock()))
    (line,) = read_jsonl(tmp_path / MASTER_LOG)
    assert line["failed_stages"] == ["topics"]


def test_a_failing_log_stage_is_reported(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("logs cannot go under a file")
    report = run_pipeline(BREAD, session_stages(None), log_stage=make_log_stage(blocked))
    assert [o.name for o in report.failed] == ["log"]
    assert report.failed[0].error_type in {"FileExistsError", "NotADirectoryError"}


def test_a_torn_master_line_and_a_corrupt_stats_file_are_survived(tmp_path: Path) -> None:
    log_stage = make_log_stage(tmp_path, clock())
    run_pipeline(DOCKER, session_stages(None), log_stage=log_stage)
    with (tmp_path / MASTER_LOG).open("ab") as master:
        master.write(b'{"session_id": "torn')  # a crash mid-append
    (tmp_path / STATS_FILE).write_text("{not json")
    report = run_pipeline(BREAD, session_stages(None), log_stage=log_stage)
    assert not report.failed
    assert [line["session_id"] for line in read_jsonl(tmp_path / MASTER_LOG)] == [
        "s-docker",
        "s-bread",
    ]
    stats = PipelineStats.load(tmp_path)
    assert (stats.sessions_processed, stats.total_messages) == (2, 10)


def test_odd_ids_make_distinct_safe_file_names() -> None:
    names = {
        session_log_name("acme", "a/b", T0),
        session_log_name("acme", "a_b", T0),
        session_log_name("acme_a", "b", T0),
        session_log_name("acme", "../../etc", T0),
    }
    assert len(names) == 4
    assert all(re.fullmatch(r"session_log_[\w.-]+_\d{8}T\d{6}Z\.json", n) for n in names)
    assert all("/" not in n for n in names)


def test_the_embedding_pipeline_runs_end_to_end(minilm: Embed, tmp_path: Path) -> None:
    report = run_pipeline(
        DOCKER, session_stages(minilm), log_stage=make_log_stage(tmp_path, clock())
    )
    assert report.topics is not None and report.topics.method == "embedding"
    assert not report.failed
    assert np.isfinite([t.score for t in report.topics.topics]).all()
