"""All configuration in one object: defaults here, `KAIZEN_*` env on top, CLI flags on top of that."""

import os
from collections.abc import Mapping
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "KAIZEN_"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to bind.")
    port: int = Field(8080, ge=0, le=65535, description="Port to bind; 0 picks a free one.")
    data_dir: Path = Field(Path("./data"), description="SQLite file, logs and state live here.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Threshold for both log sinks."
    )
    access_log: bool = Field(False, description="Log every HTTP request (costs throughput).")
    require_auth: bool = Field(
        False, description="Refuse to run open even when no token exists yet."
    )
    token_cache_ttl_s: float = Field(
        5.0, ge=0, description="How long a token lookup is cached; bounds CLI revocation delay."
    )
    max_body_bytes: int = Field(4 << 20, ge=1024, description="Largest HTTP body accepted.")
    max_frame_bytes: int = Field(4 << 20, ge=1024, description="Largest WebSocket frame answered.")
    ws_hard_limit_bytes: int = Field(
        64 << 20, ge=1024, description="Frames above this close the socket (1009) unread."
    )
    max_batch: int = Field(5000, ge=1, le=100_000, description="Most interactions in one batch.")
    heartbeat_s: float = Field(25.0, gt=0, description="WebSocket ping interval.")
    write_batch_max: int = Field(
        10_000, ge=1, description="Most queued rows the writer commits in one transaction."
    )
    write_queue_max: int = Field(
        100_000, ge=1, description="Queued writes beyond which producers wait."
    )
    write_commit_interval_s: float = Field(
        0.005,
        ge=0,
        le=1.0,
        description="Least time between group commits under contention: writes wait up to "
        "this long to share a commit; a write to an idle writer commits at once.",
    )
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL"] = Field(
        "FULL",
        description="FULL fsyncs every group commit; NORMAL survives a crash, not power loss.",
    )
    read_connections: int = Field(2, ge=1, le=32, description="SQLite connections for reads.")
    miner_process: bool = Field(
        True,
        description="Mine in a process of its own (another core, no GIL shared with requests).",
    )
    extractor_interval_s: float = Field(
        0.02, gt=0, le=1.0, description="Extractor tick; learnings appear within about this."
    )
    extractor_backlog_max: int = Field(
        200_000,
        ge=1,
        description="Committed interactions held for the miner; past this they are re-read from the store.",
    )
    min_support: int = Field(
        1,
        ge=1,
        description="Interactions a pattern needs before it becomes a learning; at 1 a "
        "single success is served at once, at LOW confidence.",
    )
    prior_outcomes: float = Field(
        3.0,
        ge=0,
        description="Outcomes under which a learning's confidence borrows from how the "
        "same actions did for other agent types and in other task clusters.",
    )
    cluster_similarity: float = Field(
        0.5, gt=0, le=1, description="Jaccard similarity that puts two tasks in one cluster."
    )
    cross_agent_weight: float = Field(
        0.5, ge=0, le=1, description="Score factor for learnings of another agent type."
    )
    evidence_max: int = Field(20, ge=1, le=1000, description="Interaction ids kept as evidence.")
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="Sentence-transformers model for task similarity; 'none' for lexical only.",
    )
    embedding_device: str = Field("cpu", description="Torch device the embedder runs on.")
    embedding_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision of the embedding model's weights; auto is bfloat16 on a "
        "CPU with native bf16 (AVX512-BF16, AMX), else float32.",
    )
    embedding_threads: int = Field(
        1,
        ge=0,
        description="Torch CPU threads for encoding; 0 is torch's default (every core). "
        "One leaves the other cores to SQLite and the event loop, which a query uses meanwhile.",
    )
    embedding_batch_max: int = Field(64, ge=1, le=4096, description="Most texts per encode call.")
    embedding_cache_size: int = Field(
        10_000, ge=0, description="Embeddings of recent texts kept in memory."
    )
    semantic_cluster_similarity: float = Field(
        0.6, gt=0, le=1, description="Embedding cosine that puts two tasks in one cluster."
    )
    learning_window_days: float = Field(
        30.0, gt=0, description="Evidence older than this counts for nothing."
    )
    learning_half_life_days: float = Field(
        7.0, gt=0, description="Age at which evidence counts half."
    )
    recency_half_life_days: float = Field(
        14.0, gt=0, description="Age of a learning's last evidence at which its rank halves."
    )
    retire_support: float = Field(
        1.0, ge=0, description="Decayed support under which a learning retires."
    )
    optimization_min_gain: float = Field(
        0.2, gt=0, lt=1, description="Least saving (time or iterations) an OPTIMIZATION states."
    )
    best_practice_breadth: int = Field(
        3, ge=2, description="Clusters or agent types a BEST_PRACTICE must hold across."
    )
    semantic_weight: float = Field(
        0.8, ge=0, le=1, description="Weight of similarity against BM25 in relevance."
    )
    learning_holdout_fraction: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of each tenant's learnings requests (with a task) answered with "
        "none, as a randomised control for the tenant's measured lift.",
    )
    relevance_power: float = Field(
        3.0,
        ge=1,
        le=10,
        description="Exponent of relevance in a learning's score: how much fitting this "
        "task outweighs having more evidence.",
    )
    min_relevance: float = Field(
        0.3, ge=0, le=1, description="Relevance under which a learning is not returned for a task."
    )
    lexical_postings_max: int = Field(
        2_000,
        ge=1,
        description="Documents one BM25 search may read: a query's rarest terms are "
        "searched while their document counts add up to at most this.",
    )
    sweep_interval_s: float = Field(
        300.0,
        gt=0,
        description="How often every learning is restated at the current time "
        "(a sixtieth of them at a time).",
    )
    anomaly_threshold: float = Field(
        0.8, gt=0, le=1, description="Rarity from which an interaction is an anomaly."
    )
    anomaly_min_history: float = Field(
        20.0, ge=0, description="Decayed interactions an agent type needs before alerts."
    )
    anomaly_familiarity: float = Field(
        3.0, gt=0, description="Occurrences after which an action is 1/e as novel."
    )
    shutdown_timeout_s: float = Field(10.0, gt=0, description="Grace period for draining writes.")
    strategy_discount: float = Field(
        0.9995,
        gt=0,
        le=1,
        description="Weight an outcome keeps per later outcome in its context (1: no forgetting).",
    )
    strategy_change_detection: bool = Field(
        True,
        description="Restart a strategy's posterior when a GLR test finds its success shifted.",
    )
    strategy_backoff_outcomes: float = Field(
        10.0, ge=0, description="Outcomes below which a context borrows from the coarser level."
    )
    performance_lookback_days: float = Field(
        30.0, gt=0, description="Executions older than this are left out of performance figures."
    )
    performance_max_rows: int = Field(
        100_000, ge=100, description="Most executions (newest first) one performance read loads."
    )
    workflow_idle_s: float = Field(
        300.0, gt=0, description="Quiet time after which a workflow session closes."
    )
    workflow_min_support: int = Field(
        3, ge=1, description="Sessions a command sequence needs to be listed as a workflow."
    )
    workflow_tick_s: float = Field(
        1.0, gt=0, le=60, description="How often idle workflow sessions are closed and learned."
    )
    workflow_checkpoint_s: float = Field(
        60.0, gt=0, description="How often the workflow learner is saved (events are always)."
    )
    workflow_learnings: int = Field(
        50, ge=0, le=1000, description="Best workflows per tenant also served at /learnings."
    )
    workflow_publish_s: float = Field(
        5.0, gt=0, description="How often newly learned workflows reach /learnings."
    )
    session_idle_s: float = Field(
        1800.0, gt=0, description="A chat session without a message for this long is ended."
    )
    session_sweep_s: float = Field(
        5.0, gt=0, le=300, description="How often idle chat sessions are looked for."
    )
    training_base_model: str | None = Field(
        None,
        description="Causal LM to fine-tune: a local path or hub id; unset turns training off.",
    )
    training_workers: int = Field(1, ge=1, le=16, description="Training worker processes.")
    training_threads: int = Field(1, ge=1, le=256, description="Torch CPU threads per worker.")
    training_window_days: float = Field(
        30.0, gt=0, description="Training data older than this only enters as replay."
    )
    training_replay_fraction: float = Field(
        0.2, ge=0, le=1, description="Older examples replayed, as a share of the fresh ones."
    )
    training_held_out_fraction: float = Field(
        0.2, gt=0, lt=1, description="Share of examples held out for the evaluation gate."
    )
    training_min_examples: int = Field(
        2, ge=1, description="Training examples a job needs, else it fails without training."
    )
    training_gate_margin: float = Field(
        0.01,
        ge=0,
        lt=1,
        description="Relative held-out loss gain a new adapter needs to be promoted.",
    )
    training_epochs: int = Field(1, ge=1, le=100, description="Passes over the training data.")
    training_max_steps: int | None = Field(
        None, ge=1, description="Optimizer steps per job; set, it replaces epochs."
    )
    training_learning_rate: float = Field(2e-4, gt=0, le=1, description="AdamW learning rate.")
    training_batch_size: int = Field(8, ge=1, le=1024, description="Examples per step.")
    training_lora_r: int = Field(8, ge=1, le=256, description="LoRA rank (alpha is twice it).")
    training_max_length: int = Field(256, ge=16, le=32768, description="Tokens per example.")
    training_device: str = Field("auto", description="auto (GPU when there is one), cpu, cuda...")
    training_min_messages: int = Field(4, ge=1, description="A session this long triggers a job.")
    training_schedule_s: float = Field(
        3600.0, gt=0, description="Retrain this often when there is new data."
    )
    loop_lag_window_s: float = Field(
        60.0, gt=0, description="Event-loop lag in /stats covers this many recent seconds."
    )
    kb_min_uses: int = Field(5, ge=1, description="Uses before a knowledge item can be VALIDATED.")
    kb_validate_percent: int = Field(
        80, ge=1, le=100, description="Success percentage from which an item is VALIDATED."
    )
    kb_deprecate_percent: int = Field(
        40, ge=0, le=99, description="Success percentage under which an item is DEPRECATED."
    )
    kb_promote_min_votes: int = Field(
        3, ge=0, description="Votes a hub message needs to be promoted into the knowledge base."
    )
    kb_promote_min_applications: int = Field(
        1, ge=0, description="Applications a hub message needs to be promoted."
    )
    hub_max_message_bytes: int = Field(
        64 << 10, ge=256, le=16 << 20, description="Largest encoded knowledge message."
    )
    hub_max_subscriptions: int = Field(
        128, ge=1, description="Most subscriptions one WebSocket may hold."
    )
    hub_max_channels: int = Field(1000, ge=9, description="Most channels one tenant may have.")
    hub_publish_rate: float = Field(
        1000.0, gt=0, description="Publishes per second allowed to one token (token bucket)."
    )
    hub_publish_burst: int = Field(
        2000, ge=1, description="Publishes one token may make at once before the rate bites."
    )
    hub_history_size: int = Field(
        10_000, ge=1, description="Messages each channel keeps for recovery and queries."
    )
    hub_history_ttl_s: float = Field(
        30 * 86400.0, gt=0, description="Age past which messages leave the history."
    )
    hub_outbox_bytes: int = Field(
        1 << 20,
        ge=4096,
        description="Bytes queued for one connection before its lowest-priority pushes drop.",
    )
    hub_max_drops: int = Field(
        1000, ge=0, description="Drops since a connection's queue last emptied before it is closed."
    )
    hub_transport_high_water: int = Field(
        256 << 10, ge=1024, description="Bytes in a socket's send buffer above which pushes wait."
    )
    hub_write_delay_s: float = Field(
        0.0,
        ge=0,
        le=1.0,
        description=(
            "Wait before writing queued pushes (and the acks of WebSocket publishes, "
            "which ride with them), to coalesce more of them per write."
        ),
    )
    hub_prune_interval_s: float = Field(
        10.0, gt=0, description="How often history past its size or age is deleted."
    )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "kaizen.sqlite3"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "logs" / "kaizen.log"

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ip_address(self.host).is_loopback
        except ValueError:
            return False

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> "Settings":
        """Defaults < environment (`KAIZEN_<FIELD>`) < explicit overrides (CLI flags)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {
            name: env[ENV_PREFIX + name.upper()]
            for name in cls.model_fields
            if ENV_PREFIX + name.upper() in env
        }
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.model_validate(values)
