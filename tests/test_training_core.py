"""The fine-tuning core with a real tiny Llama: data set, labels, training, the gate and
the adapter registry. The model is built once per module and trains in CPU seconds.

The task is "what does the <adjective> <adjective> <animal> say" → the animal's sound:
four answers chosen by one word among two hundred instruction wordings, so a held-out
wording still names a known animal. An adapter trained on the true pairs learns the
mapping; one trained on the same answers shuffled among the instructions can only learn
which four words answers are, and its held-out loss stays near ln 4 on the answer token.
"""

import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.training.data import (
    DAY,
    Example,
    build_dataset,
    dedupe,
    is_held_out,
    normalise,
    replay_count,
)
from server.training.evaluate import decide, held_out_loss
from server.training.registry import (
    AdapterRegistry,
    NothingToRollBack,
    VersionNotFound,
    VersionStatus,
)
from server.training.tiny import build_tiny_llama
from server.training.tokenizer import IGNORE, PROMPT_TEMPLATE, encode_pair, format_prompt
from server.training.trainer import Progress, TrainResult, TrainSpec, train

NOW = 1_700_000_000.0
SOUNDS = {"cat": "meow", "dog": "woof", "cow": "moo", "duck": "quack"}
ADJECTIVES = ("red", "blue", "big", "small", "old", "new", "happy", "sad", "tall", "fast")

Pair = tuple[str, str]


def animal_pairs() -> tuple[list[Pair], list[Pair]]:
    """64 training pairs and 16 held-out pairs with wordings not in training."""
    wordings = [
        (f"what does the {a} {b} {animal} say", sound)
        for animal, sound in SOUNDS.items()
        for a in ADJECTIVES
        for b in ADJECTIVES
        if a != b
    ]
    random.Random(0).shuffle(wordings)
    return wordings[:64], wordings[64:80]


def shuffled_outputs(pairs: list[Pair]) -> list[Pair]:
    outputs = [output for _, output in pairs]
    random.Random(1).shuffle(outputs)
    return [(instruction, output) for (instruction, _), output in zip(pairs, outputs, strict=True)]


def spec_for(model: Path, out: Path, pairs: list[Pair], held_out: list[Pair]) -> TrainSpec:
    """100 steps at the tiny model's learning rate: about a second on one CPU thread."""
    return TrainSpec(
        str(model),
        str(out),
        pairs,
        held_out,
        max_steps=100,
        learning_rate=1e-2,
        lora_dropout=0.0,
        threads=1,
        progress_every=10,
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def true_run(
    tiny: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainResult, list[Progress]]:
    train_pairs, held = animal_pairs()
    reports: list[Progress] = []
    out = tmp_path_factory.mktemp("true") / "adapter"
    return train(spec_for(tiny, out, train_pairs, held), reports.append), reports


# -- data ----------------------------------------------------------------------------


def ex(instruction: str, output: str = "out", age_days: float = 1.0, **kw: str) -> Example:
    return Example(instruction, output, created_at=NOW - age_days * DAY, **kw)


def test_the_window_keeps_the_last_30_days_and_nothing_from_the_future() -> None:
    examples = [ex("fresh", age_days=29.9), ex("stale", age_days=30.1), ex("ahead", age_days=-1)]
    data = build_dataset(examples, NOW, held_out_fraction=0.0)
    assert [e.instruction for e in data.train] == ["fresh"]
    assert data.window == (NOW - 30 * DAY, NOW)
    assert (data.counts.seen, data.counts.fresh) == (3, 1)


def test_duplicates_up_to_case_and_spacing_collapse_to_the_newest() -> None:
    examples = [ex("Reverse:  ABC", "cba", 3), ex("reverse: abc", "CBA ", 1), ex("other", "x", 2)]
    data = build_dataset(examples, NOW, held_out_fraction=0.0)
    assert data.counts.duplicates == 1
    assert [e.instruction for e in data.train] == ["other", "reverse: abc"]  # oldest first


def test_replay_fills_its_share_of_training_and_skips_what_is_fresh() -> None:
    fresh = [ex(f"new {i}") for i in range(40)]
    old = [ex(f"old {i}", age_days=90) for i in range(100)] + [ex("new 0", age_days=90)]
    data = build_dataset(fresh, NOW, replay=old, replay_fraction=0.2, held_out_fraction=0.0)
    assert data.counts.replay_candidates == 100  # "new 0" is fresh already
    assert data.counts.replayed == replay_count(40, 0.2, 100) == 10
    assert data.counts.train == 50
    again = build_dataset(
        reversed(fresh), NOW, replay=reversed(old), replay_fraction=0.2, held_out_fraction=0.0
    )
    assert again.train == data.train  # the input order does not matter; the seed does
    reseeded = build_dataset(
        fresh, NOW, replay=old, replay_fraction=0.2, held_out_fraction=0.0, seed=1
    )
    assert reseeded.train != data.train


def test_replayed_examples_never_land_in_held_out() -> None:
    old = [ex(f"old {i}", age_days=90) for i in range(200)]
    fresh = [ex(f"new {i}") for i in range(200)]
    data = build_dataset(fresh, NOW, replay=old, replay_fraction=0.3, held_out_fraction=0.3)
    assert all(not e.instruction.startswith("old") for e in data.held_out)
    assert all(not is_held_out(e.key, 0.3) for e in data.train)


def test_the_held_out_share_is_close_to_the_fraction() -> None:
    data = build_dataset([ex(f"task {i}") for i in range(2000)], NOW, held_out_fraction=0.2)
    assert 0.17 < data.counts.held_out / 2000 < 0.23
    assert data.counts.train + data.counts.held_out == 2000


@given(
    st.lists(
        st.tuples(st.text("abc ", max_size=6), st.text("xyZ ", max_size=4), st.floats(0, 40)),
        max_size=30,
    ),
    st.randoms(use_true_random=False),
)
def test_an_example_keeps_its_side_whatever_else_is_in_the_set(
    rows: list[tuple[str, str, float]], rng: random.Random
) -> None:
    examples = [ex(i, o, age) for i, o, age in rows]
    full = build_dataset(examples, NOW, held_out_fraction=0.3)
    subset = rng.sample(examples, len(examples) // 2)
    rng.shuffle(subset)
    part = build_dataset(subset, NOW, held_out_fraction=0.3, seed=rng.randrange(100))
    held = {e.key for e in full.held_out}
    assert {e.key for e in part.held_out} <= held
    assert not {e.key for e in part.train} & held
    assert not held & {e.key for e in full.train}


@given(st.lists(st.tuples(st.text("aB \t", max_size=5), st.text("cD \n", max_size=5)), max_size=20))
def test_dedupe_leaves_one_example_per_normalised_pair(rows: list[tuple[str, str]]) -> None:
    kept = dedupe(ex(i, o) for i, o in rows)
    assert len(kept) == len({(normalise(i), normalise(o)) for i, o in rows})
    assert dedupe(reversed(kept)) == kept


# -- labels --------------------------------------------------------------------------


def test_only_completion_tokens_carry_labels(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    encoded = encode_pair(tokenizer, ("what does the cat say", "meow"), max_length=256)
    prompt = tokenizer(format_prompt("what does the cat say"), add_special_tokens=False)
    n = len(prompt["input_ids"])
    assert encoded.input_ids[:n] == prompt["input_ids"]
    assert encoded.labels[:n] == [IGNORE] * n
    assert encoded.labels[n:] == encoded.input_ids[n:]
    assert encoded.labels[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(encoded.labels[n:-1]) == "meow"


def test_a_long_pair_is_cut_to_max_length_keeping_the_end_of_the_prompt(tiny: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    encoded = encode_pair(tokenizer, ("cat " * 100, "meow " * 100), max_length=40)
    assert len(encoded.input_ids) == 40
    assert encoded.completion_tokens == 20
    tail = tokenizer(PROMPT_TEMPLATE.split("}")[-1], add_special_tokens=False)["input_ids"]
    assert encoded.input_ids[20 - len(tail) : 20] == tail


# -- training and the gate -----------------------------------------------------------


def test_training_lowers_the_loss(tiny: Path, true_run: tuple[TrainResult, list[Progress]]) -> None:
    result, reports = true_run
    assert result.steps == 100 and result.examples_seen == 800
    assert result.train_loss_last < result.train_loss_first / 3
    assert result.held_out_loss is not None and result.base_held_out_loss is not None
    assert result.held_out_loss < result.base_held_out_loss / 3
    assert {p.name for p in Path(result.output_dir).iterdir()} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    assert [p.step for p in reports] == list(range(10, 101, 10))
    assert reports[-1].eta_s == 0 and result.tokens_per_s > 0
    train_pairs, _ = animal_pairs()
    trained = held_out_loss(tiny, result.output_dir, train_pairs)
    assert trained < held_out_loss(tiny, None, train_pairs) / 3


def test_the_gate_rejects_an_adapter_trained_on_shuffled_answers(
    tiny: Path, true_run: tuple[TrainResult, list[Progress]], tmp_path: Path
) -> None:
    true_result, _ = true_run
    train_pairs, held = animal_pairs()
    spec = spec_for(tiny, tmp_path / "shuffled", shuffled_outputs(train_pairs), held)
    spec.current_adapter = true_result.output_dir
    shuffled = train(spec)
    assert shuffled.held_out_loss is not None and true_result.held_out_loss is not None
    assert shuffled.current_held_out_loss == pytest.approx(true_result.held_out_loss, rel=1e-4)
    base = held_out_loss(tiny, None, held)
    assert base == pytest.approx(shuffled.base_held_out_loss, rel=1e-4)
    # Noise still beats a random base model: the gate must not stop at the base.
    assert decide(shuffled.held_out_loss, None, base).promote
    verdict = decide(shuffled.held_out_loss, true_result.held_out_loss, base)
    assert not verdict.promote
    assert "current adapter" in verdict.reason
    assert decide(true_result.held_out_loss, None, base).promote


def test_the_gate_wants_the_margin_over_the_better_of_base_and_current() -> None:
    assert decide(0.98, 1.0, 2.0, margin=0.01).promote
    assert not decide(0.995, 1.0, 2.0, margin=0.01).promote
    assert not decide(1.5, 2.0, 1.2, margin=0.0).promote  # the base is the bar here
    assert decide(1.0, None, 1.2, margin=0.1).threshold == pytest.approx(1.08)
    assert not decide(float("nan"), None, 1.0).promote
    with pytest.raises(ValueError):
        decide(1.0, None, 1.0, margin=1.0)


# -- registry ------------------------------------------------------------------------


def staging(tmp_path: Path, name: str, weights: bytes) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "adapter_config.json").write_text('{"r": 8}')
    (directory / "adapter_model.safetensors").write_bytes(weights)
    return directory


def add(registry: AdapterRegistry, tmp_path: Path, name: str, loss: float) -> str:
    manifest = registry.add(
        staging(tmp_path, name, name.encode() * 100),
        base_model="tiny",
        job_id=f"job-{name}",
        window=(NOW - 30 * DAY, NOW),
        counts={"train": 64, "held_out": 16},
        metrics={"held_out_loss": loss, "base_loss": 7.0, "current_loss": None},
    )
    return manifest.version


def test_a_version_records_what_it_is_made_of(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "reg")
    version = add(registry, tmp_path, "a", 0.5)
    assert version == "v000001"
    on_disk = json.loads((registry.path_of(version) / "manifest.json").read_text())
    weights = hashlib.sha256(b"a" * 100).hexdigest()
    assert on_disk["files"]["adapter_model.safetensors"] == weights
    assert on_disk["status"] == "candidate" and on_disk["job_id"] == "job-a"
    assert on_disk["counts"] == {"train": 64, "held_out": 16}
    assert on_disk["metrics"]["held_out_loss"] == 0.5
    assert on_disk["window"] == [NOW - 30 * DAY, NOW]
    assert registry.get(version).files == on_disk["files"]
    with tarfile.open(fileobj=io.BytesIO(registry.archive_bytes(version))) as tar:
        assert sorted(tar.getnames()) == [
            "v000001/adapter_config.json",
            "v000001/adapter_model.safetensors",
            "v000001/manifest.json",
        ]


def test_half_written_and_corrupt_versions_are_ignored(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "reg")
    good, bad = add(registry, tmp_path, "a", 0.5), add(registry, tmp_path, "b", 0.4)
    (registry.root / "tmp-crashed").mkdir()  # an add killed before its rename
    (registry.root / "tmp-crashed" / "adapter_config.json").write_text("{}")
    (registry.versions_dir / "v000007").mkdir()  # no manifest: not a version
    weights = registry.versions_dir / bad / "adapter_model.safetensors"
    weights.write_bytes(b"x" + weights.read_bytes()[1:])
    fresh = AdapterRegistry(registry.root)
    assert [m.version for m in fresh.list()] == [good]
    with pytest.raises(VersionNotFound):
        fresh.get(bad)
    assert add(fresh, tmp_path, "c", 0.3) == "v000008"  # numbers are never reused
    assert fresh.sweep() == 1


def test_promote_and_rollback_move_the_pointers(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "reg")
    v1, v2, v3 = (
        add(registry, tmp_path, n, loss) for n, loss in (("a", 0.5), ("b", 0.3), ("c", 0.4))
    )
    assert registry.current() is None
    registry.promote(v1)
    registry.promote(v2)
    registry.promote(v3)
    pointers = json.loads((registry.root / "pointers.json").read_text())
    assert pointers == {"current": v3, "previous": v2, "best": v2, "history": [v1, v2, v3]}
    restored = registry.rollback("worse in production")
    assert restored is not None and restored.version == v2
    assert registry.get(v3).status is VersionStatus.ROLLED_BACK
    assert registry.get(v3).reason == "worse in production"
    assert AdapterRegistry(registry.root).pointers().previous == v1
    assert registry.rollback() is not None
    assert registry.rollback() is None  # back to the base model
    with pytest.raises(NothingToRollBack):
        registry.rollback()


def test_a_corrupt_current_version_falls_back_to_the_one_before(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "reg")
    v1, v2 = add(registry, tmp_path, "a", 0.5), add(registry, tmp_path, "b", 0.4)
    registry.promote(v1)
    registry.promote(v2)
    (registry.versions_dir / v2 / "adapter_config.json").write_text('{"r": 9}')
    current = registry.current()
    assert current is not None and current.version == v1
    assert registry.reject(v1, "manual").status is VersionStatus.REJECTED


def test_a_registered_adapter_loads_and_scores_like_the_trained_one(
    tiny: Path, true_run: tuple[TrainResult, list[Progress]], tmp_path: Path
) -> None:
    result, _ = true_run
    registry = AdapterRegistry(tmp_path / "reg")
    version = registry.add(result.output_dir, base_model=str(tiny), job_id="job-1").version
    _, held = animal_pairs()
    loss = held_out_loss(tiny, registry.path_of(version), held)
    assert loss == pytest.approx(result.held_out_loss, rel=1e-4)
