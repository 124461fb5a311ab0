"""The embedder with the real all-MiniLM-L6-v2 model, loaded once per test session.

Every test starts its own Embedder (its own counters, cache and thread); the
process-wide model cache makes every start after the first instant.
"""

import asyncio
import logging
import sys
from collections.abc import AsyncIterator

import numpy as np
import pytest

from server.core.embedder import (
    DEFAULT_MODEL,
    Embedder,
    EmbedderClosedError,
    EmbedderState,
    load_sentence_model,
    make_embedder,
    weights_dtype,
)

PARAPHRASE = ("Write unit tests for the CSV parser", "Add tests covering the csv reader module")
UNRELATED = "The cafeteria serves lentil soup on Fridays"


@pytest.fixture
async def embedder() -> AsyncIterator[Embedder]:
    started = Embedder()
    await started.start()
    yield started
    await started.close()


def texts(n: int, tag: str = "") -> list[str]:
    return [f"{tag}task {i}: fix the flaky retry in module {i}" for i in range(n)]


async def test_a_paraphrase_is_closer_than_an_unrelated_sentence(embedder: Embedder) -> None:
    a, b, other = await embedder.embed([*PARAPHRASE, UNRELATED])
    assert float(a @ b) > float(a @ other) + 0.2
    assert float(a @ b) > float(b @ other) + 0.2


async def test_vectors_are_unit_length_float32_rows_in_order(embedder: Embedder) -> None:
    batch = await embedder.embed(texts(5))
    assert batch.shape == (5, embedder.dimension) == (5, 384)
    assert batch.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    one = await embedder.embed_one(texts(5)[3])
    assert one.shape == (384,)
    np.testing.assert_array_equal(one, batch[3])


async def test_empty_input_and_duplicates(embedder: Embedder) -> None:
    assert (await embedder.embed([])).shape == (0, 384)
    rows = await embedder.embed(["same", "other", "same"])
    np.testing.assert_array_equal(rows[0], rows[2])
    assert embedder.counters().encoded == 2


async def test_concurrent_single_calls_are_batched(embedder: Embedder) -> None:
    many = texts(100)
    singles = await asyncio.gather(*(embedder.embed_one(t) for t in many))
    counters = embedder.counters()
    assert counters.encoded == 100
    assert counters.batches < 100
    assert counters.batches <= 10  # far fewer: 100 texts over batch_max=64
    together = await embedder.embed(many)  # all cache hits now
    np.testing.assert_array_equal(np.stack(singles), together)
    assert embedder.counters().cache_hits == 100

    uncached = Embedder(cache_size=0, batch_max=128)
    await uncached.start()
    try:
        fresh = await uncached.embed(many)  # one encode of all 100: other batch composition
    finally:
        await uncached.close()
    np.testing.assert_allclose(np.stack(singles), fresh, atol=1e-5)


async def test_a_repeated_text_is_a_cache_hit(embedder: Embedder) -> None:
    first = await embedder.embed_one("Retry the upload with backoff")
    second = await embedder.embed_one("Retry the upload with backoff")
    np.testing.assert_array_equal(first, second)
    counters = embedder.counters()
    assert (counters.texts, counters.cache_hits, counters.encoded) == (2, 1, 1)
    assert (counters.dimension, counters.model) == (384, DEFAULT_MODEL)


async def test_the_cache_evicts_the_least_recently_used() -> None:
    small = Embedder(cache_size=2)
    await small.start()
    try:
        for text in ["a", "b", "a", "c", "a", "b"]:  # b is evicted by c
            await small.embed_one(text)
        assert (small.counters().cache_hits, small.counters().encoded) == (2, 4)
    finally:
        await small.close()


async def test_cancelling_callers_leaves_the_embedder_working(embedder: Embedder) -> None:
    in_flight = asyncio.create_task(embedder.embed(texts(64, "a")))
    await asyncio.sleep(0.01)  # the drain task has taken its batch
    queued = asyncio.create_task(embedder.embed(texts(64, "b")))
    await asyncio.sleep(0)
    in_flight.cancel()
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await in_flight
    with pytest.raises(asyncio.CancelledError):
        await queued
    async with asyncio.timeout(30):
        after = await embedder.embed(["still here", *texts(3, "a")])
    assert after.shape == (4, 384)
    assert embedder.counters().cache_hits == 3  # the cancelled batch was still encoded and cached
    assert embedder.state is EmbedderState.RUNNING


async def test_close_fails_queued_callers_and_is_idempotent() -> None:
    closing = Embedder()
    await closing.start()
    in_flight = asyncio.create_task(closing.embed(texts(64, "c")))
    await asyncio.sleep(0.01)
    queued = asyncio.create_task(closing.embed(texts(8, "d")))
    await asyncio.sleep(0)
    await closing.close()
    assert (await in_flight).shape == (64, 384)  # the encode in flight completes
    with pytest.raises(EmbedderClosedError):
        await queued
    await closing.close()
    assert closing.state is EmbedderState.CLOSED
    with pytest.raises(EmbedderClosedError):
        await closing.embed_one("too late")


async def test_an_unstarted_embedder_refuses_and_closes() -> None:
    idle = Embedder()
    with pytest.raises(RuntimeError, match="not started"):
        await idle.embed_one("early")
    await idle.close()
    await idle.close()
    assert idle.counters().dimension == 0


def test_both_names_of_the_default_model_load_the_bundled_copy() -> None:
    assert load_sentence_model(DEFAULT_MODEL) is load_sentence_model(DEFAULT_MODEL)
    bundled = load_sentence_model(f"sentence-transformers/{DEFAULT_MODEL}")
    assert bundled.get_embedding_dimension() == 384


@pytest.mark.parametrize("name", [None, "", "none", "None"])
def test_no_model_means_no_embedder(name: str | None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kaizen.embedder"):
        assert make_embedder(name) is None
    assert "semantic retrieval off: lexical only" in caplog.text


def test_a_missing_ml_extra_means_no_embedder(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with caplog.at_level(logging.WARNING, logger="kaizen.embedder"):
        assert make_embedder(DEFAULT_MODEL) is None
    assert [r.getMessage() for r in caplog.records] == [
        "semantic retrieval off: lexical only (sentence_transformers is not installed)"
    ]


async def test_make_embedder_builds_one_when_the_extra_is_present() -> None:
    built = make_embedder(DEFAULT_MODEL, batch_max=8)
    assert isinstance(built, Embedder)
    assert built.model_name == DEFAULT_MODEL
    await built.close()


async def test_bfloat16_weights_give_unit_vectors_close_to_float32s() -> None:
    texts = ["fix the flaky login test", "Deploy the API to staging with Kubernetes"]
    vectors = []
    for dtype in ("float32", "bfloat16"):
        embedder = Embedder(DEFAULT_MODEL, dtype=dtype)
        await embedder.start()
        vectors.append(await embedder.embed(texts))
        await embedder.close()
    full, half = vectors
    assert np.allclose(np.linalg.norm(half, axis=1), 1.0, atol=1e-5)
    assert ((full * half).sum(axis=1) > 0.999).all()
    assert weights_dtype("auto", "cuda") == "float32"
    assert weights_dtype("bfloat16", "cpu") == "bfloat16"
