"""Fine-tuning jobs and the adapter registry in the SDK; mixed into `KaizenClient`."""

from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import Page, encode
from schemas.training import FineTuneRequest, Job, JobsQuery, JobState, Models

M = TypeVar("M", bound=BaseModel)


class TrainingMethods:
    """Needs `_call` and `_call_bytes` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    async def _call_bytes(self, method: str, path: str) -> bytes:
        raise NotImplementedError

    @operation("fine_tune")
    async def fine_tune(
        self,
        *,
        base_model: str | None = None,
        max_steps: int | None = None,
        epochs: int | None = None,
        learning_rate: float | None = None,
        window_days: float | None = None,
        note: str | None = None,
    ) -> Job:
        """Queue a LoRA fine-tuning job; every argument defaults to the server's settings."""
        body = local(
            FineTuneRequest,
            base_model=base_model,
            max_steps=max_steps,
            epochs=epochs,
            learning_rate=learning_rate,
            window_days=window_days,
            note=note,
        )
        return await self._call(
            "POST", "/jobs/fine-tune", Job, body=encode(body, exclude_none=True)
        )

    @operation("get_job")
    async def get_job(self, job_id: int) -> Job:
        return await self._call("GET", f"/jobs/{job_id}", Job)

    @operation("jobs")
    async def list_jobs(
        self, *, state: JobState | str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Job]:
        query = local(JobsQuery, state=state, limit=limit, cursor=cursor)
        params = query.model_dump(mode="json", exclude_none=True)
        return await self._call("GET", "/jobs", Page[Job], params=params)

    @operation("cancel_job")
    async def cancel_job(self, job_id: int) -> Job:
        """Cancel; returns once the worker is stopped and the job CANCELLED."""
        return await self._call("DELETE", f"/jobs/{job_id}", Job)

    @operation("models")
    async def list_models(self) -> Models:
        return await self._call("GET", "/models", Models)

    @operation("download_model")
    async def download_model(self, version: str) -> bytes:
        """The version's PEFT directory and manifest as a tar.gz."""
        return await self._call_bytes("GET", f"/models/{version}/download")

    @operation("promote_model")
    async def promote_model(self, version: str) -> Models:
        return await self._call("POST", f"/models/{version}/promote", Models)

    @operation("rollback_model")
    async def rollback_model(self) -> Models:
        return await self._call("POST", "/models/rollback", Models)
