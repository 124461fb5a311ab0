"""Health and statistics."""

from typing import Literal

from pydantic import BaseModel

from schemas.learnings import TenantEffect


class Health(BaseModel):
    status: str
    version: str


class WriterStats(BaseModel):
    queue_depth: int
    batches: int
    writes: int
    last_batch_size: int
    last_commit_ms: float


class ExtractorStats(BaseModel):
    cursor: int
    """Id of the last interaction folded into patterns."""
    backlog: int
    """Committed interactions held for the next folds (0 while `behind`)."""
    behind: bool = False
    """More were committed than extractor_backlog_max held: the extractor reads
    them back from the store as the miner gets to them."""
    folded: int
    lag_s: float
    """Age of the oldest committed interaction not yet folded into patterns."""
    miner_pid: int | None = None
    """The miner's process when it runs in one of its own (`miner_process`)."""


class LearningStats(BaseModel):
    retrieval: Literal["semantic+lexical", "lexical"]
    """lexical when the `ml` extra is absent or `embedding_model` is 'none'."""
    embedding_model: str | None
    clusters: int
    """Task clusters across tenants."""
    indexed: int
    """Active learnings in the query index, across tenants."""
    embedded_texts: int
    embedding_cache_hits: int
    embedding_batches: int
    sweeps: int
    anomalies: int
    """Anomalies found since start."""


class Counts(BaseModel):
    interactions: int
    learnings: int


class HubStats(BaseModel):
    channels: int
    subscriptions: int
    published: int
    """Messages published since start."""
    delivered: int
    """Pushes queued to subscribers since start."""
    dropped: int
    """Pushes dropped from slow subscribers' queues since start."""
    slow_closed: int
    """Connections closed for being too slow since start."""


class LoopLag(BaseModel):
    """How late the event loop woke a 10 ms timer, over the last `window_s`."""

    window_s: float
    samples: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class SessionCounts(BaseModel):
    """The daemon statistics, for this tenant."""

    sessions_open: int
    sessions_processed: int
    total_messages: int
    memory_items: int
    examples_prepared: int
    fine_tunes: int


class Stats(BaseModel):
    version: str
    uptime_s: float
    tenant: str
    counts: Counts
    writer: WriterStats
    extractor: ExtractorStats
    websockets: int
    hub: HubStats
    learning: LearningStats
    learning_effect: TenantEffect
    sessions: SessionCounts
    loop_lag: LoopLag
