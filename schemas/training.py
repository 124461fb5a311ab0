"""Continuous fine-tuning: jobs, their progress, and the adapter registry."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import Cursor, Strict

Version = Annotated[str, Field(pattern=r"^v\d{6}$")]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class JobTrigger(StrEnum):
    MANUAL = "manual"
    SESSION = "session"
    SCHEDULE = "schedule"


class FineTuneRequest(Strict):
    """`POST /jobs/fine-tune`; every field defaults to the server's settings."""

    base_model: str | None = Field(default=None, min_length=1, max_length=512)
    max_steps: int | None = Field(default=None, ge=1, le=1_000_000)
    epochs: int | None = Field(default=None, ge=1, le=100)
    learning_rate: float | None = Field(default=None, gt=0, le=1)
    window_days: float | None = Field(default=None, gt=0, le=3650)
    note: str | None = Field(default=None, max_length=500)


class JobProgress(BaseModel):
    step: int
    total_steps: int
    loss: float
    eta_s: float
    examples_per_s: float
    tokens_per_s: float


class JobResult(BaseModel):
    version: str
    promoted: bool
    reason: str = Field(description="Why the evaluation gate promoted or kept the current one.")
    held_out_loss: float | None
    base_held_out_loss: float | None
    current_held_out_loss: float | None
    train_loss_first: float
    train_loss_last: float
    examples_per_s: float
    tokens_per_s: float
    device: str


class Job(BaseModel):
    id: int
    state: JobState
    trigger: JobTrigger
    base_model: str
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    examples: dict[str, int] = Field(default_factory=dict, description="Dataset counts.")
    progress: JobProgress | None = None
    result: JobResult | None = None
    error: str | None = None
    note: str | None = None


class JobsQuery(Strict):
    """Query string of `GET /jobs`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    state: JobState | None = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: Cursor | None = None


class AdapterVersion(BaseModel):
    version: str
    status: Literal["candidate", "promoted", "rejected", "rolled_back"]
    base_model: str
    job_id: str
    created_at: datetime
    reason: str
    window: tuple[datetime, datetime] | None
    counts: dict[str, int]
    metrics: dict[str, float | None]
    sha256: dict[str, str] = Field(description="File name → SHA-256 of its bytes.")


class Models(BaseModel):
    items: list[AdapterVersion] = Field(description="Newest first.")
    current: str | None
    previous: str | None
    best: str | None


class ModelEvent(BaseModel):
    """Published on the `models` channel when the serving adapter changes, so that
    consumers (a vLLM server, say) load it."""

    event: Literal["promoted", "rolled_back"]
    version: str | None
    previous: str | None
    base_model: str
    path: str = Field(description="The adapter directory on the Kaizen host.")
    download: str = Field(description="Path of its tar.gz on this server.")
