"""Fine-tuning through the server: jobs over HTTP with a tiny Llama built here,
progress on the `jobs` channel, the registry and its gate, cancellation, a killed
worker, a restart in the middle of a job, the session trigger and bad input."""

import asyncio
import contextlib
import io
import os
import signal
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client import KaizenClient
from client.errors import BadRequestError, ConflictError, NotFoundError
from schemas import Interaction
from schemas.training import Job, JobState, JobTrigger
from server.cli_jobs import _watch, render
from server.runner import KaizenServer
from server.training.tiny import build_tiny_llama
from server.web.context import SERVICES, Services
from tests.conftest import eventually, interaction, make_tokens, settings_for
from tests.refusals import assert_refused

FINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
WORDS = ["apple", "river", "stone", "cloud", "maple", "ember", "frost", "cedar", "delta", "lumen"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


def training_settings(model: Path, **overrides: Any) -> dict[str, Any]:
    return {
        "training_base_model": str(model),
        "training_learning_rate": 1e-2,
        "training_max_steps": 12,
        "training_batch_size": 4,
        "training_max_length": 48,
        "training_device": "cpu",
        "training_lora_r": 4,
    } | overrides


@contextlib.asynccontextmanager
async def kaizen(
    data_dir: Path, model: Path, **overrides: Any
) -> AsyncIterator[tuple[KaizenServer, KaizenClient]]:
    server = KaizenServer(settings_for(data_dir, **training_settings(model, **overrides)))
    await server.start()
    try:
        async with KaizenClient(server.url) as kz:
            yield server, kz
    finally:
        await server.stop()


async def teach(kz: KaizenClient) -> None:
    """Interactions whose "what worked" is a fixed function of the task."""
    items = []
    for n, word in enumerate(WORDS * 3):
        steps = [{"type": word.upper()}, {"type": WORDS[(n + 1) % len(WORDS)].upper()}]
        items.append(interaction(f"handle the {word} case {n}", actions_taken=steps))
    await kz.record_interactions([Interaction(**i) for i in items])


async def finished(kz: KaizenClient, job_id: int, timeout: float = 120) -> Job:
    async def done() -> Job | None:
        job = await kz.get_job(job_id)
        return job if job.state in FINAL else None

    return await eventually(done, timeout=timeout)


async def running(kz: KaizenClient, job_id: int) -> Job:
    async def started() -> Job | None:
        job = await kz.get_job(job_id)
        return job if job.state is JobState.RUNNING and job.progress is not None else None

    return await eventually(started, timeout=120)


async def test_a_job_trains_registers_and_promotes_an_adapter(
    data_dir: Path, tiny_model: Path
) -> None:
    async with kaizen(data_dir, tiny_model) as (_, kz):
        await teach(kz)
        async with kz.subscribe("jobs") as progress_feed:
            job = await kz.fine_tune(note="first")
            assert job.state is JobState.QUEUED
            assert job.trigger is JobTrigger.MANUAL
            done = await finished(kz, job.id)
            push = await asyncio.wait_for(progress_feed.get(), 10)
        assert push.data.title.startswith(f"job {job.id}")
        assert done.state is JobState.SUCCEEDED, done.error
        assert done.progress is not None and done.progress.step == done.progress.total_steps == 12
        result = done.result
        assert result is not None
        assert result.train_loss_last < result.train_loss_first
        assert done.examples["train"] > 0 and done.examples["held_out"] > 0
        models = await kz.list_models()
        assert [m.version for m in models.items] == [result.version]
        assert set(models.items[0].sha256) >= {"adapter_config.json", "adapter_model.safetensors"}
        assert (models.current == result.version) is result.promoted
        archive = tarfile.open(fileobj=io.BytesIO(await kz.download_model(result.version)))
        names = {Path(n).name for n in archive.getnames()}
        assert {"adapter_config.json", "adapter_model.safetensors", "manifest.json"} <= names


async def test_cancel_stops_the_worker(data_dir: Path, tiny_model: Path) -> None:
    async with kaizen(data_dir, tiny_model, training_max_steps=100_000) as (server, kz):
        await teach(kz)
        job = await kz.fine_tune()
        await running(kz, job.id)
        pid = _services(server).training.worker_pid(job.id)
        assert pid is not None
        cancelled = await kz.cancel_job(job.id)
        assert cancelled.state is JobState.CANCELLED
        assert not _alive(pid)
        with pytest.raises(ConflictError):
            await kz.cancel_job(job.id)


async def test_a_killed_worker_fails_its_job_and_nothing_else(
    data_dir: Path, tiny_model: Path
) -> None:
    async with kaizen(data_dir, tiny_model) as (server, kz):
        await teach(kz)
        first = await finished(kz, (await kz.fine_tune()).id)
        before = (await kz.list_models()).current
        job = await kz.fine_tune(max_steps=100_000)
        await running(kz, job.id)
        pid = _services(server).training.worker_pid(job.id)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        failed = await finished(kz, job.id)
        assert failed.state is JobState.FAILED
        assert failed.error is not None and "worker died" in failed.error
        assert (await kz.health()).status == "ok"
        assert (await kz.list_models()).current == before
        again = await finished(kz, (await kz.fine_tune()).id)
        assert again.state is JobState.SUCCEEDED, again.error
        assert first.state is JobState.SUCCEEDED


async def test_a_job_running_at_shutdown_is_failed_after_restart(
    data_dir: Path, tiny_model: Path
) -> None:
    async with kaizen(data_dir, tiny_model, training_max_steps=100_000) as (_, kz):
        await teach(kz)
        job = await kz.fine_tune()
        await running(kz, job.id)
    async with kaizen(data_dir, tiny_model) as (_, kz):
        after = await kz.get_job(job.id)
        assert after.state is JobState.FAILED
        assert after.error is not None and "interrupted" in after.error
        assert (await kz.list_jobs()).items[0].id == job.id


async def test_a_long_session_triggers_a_job(data_dir: Path, tiny_model: Path) -> None:
    async with kaizen(data_dir, tiny_model, training_min_messages=4) as (_, kz):
        async with kz.session() as s:
            for n in range(2):
                await s.log("user", f"How do I list files in a directory, variant {n}?")
                await s.log("assistant", f"Use `ls -la` to list every file, variant {n}.")

        async def triggered() -> list[Job]:
            return [j for j in (await kz.list_jobs()).items if j.trigger is JobTrigger.SESSION]

        job = (await eventually(triggered, timeout=60))[0]
        assert job.note == "session ended"
        done = await finished(kz, job.id)
        assert done.examples["seen"] >= 1  # the session's examples reached the job


async def test_no_base_model_means_no_jobs(kz: KaizenClient) -> None:
    with pytest.raises(BadRequestError):
        await kz.fine_tune()


async def test_jobs_and_models_are_per_tenant(data_dir: Path, tiny_model: Path) -> None:
    token_a, token_b = await make_tokens(data_dir, ("acme", "coder"), ("globex", "tester"))
    server = KaizenServer(settings_for(data_dir, **training_settings(tiny_model)))
    await server.start()
    try:
        async with (
            KaizenClient(server.url, token=token_a) as a,
            KaizenClient(server.url, token=token_b) as b,
        ):
            await teach(a)
            job = await finished(a, (await a.fine_tune()).id)
            assert job.result is not None
            with pytest.raises(NotFoundError):
                await b.get_job(job.id)
            with pytest.raises(NotFoundError):
                await b.cancel_job(job.id)
            assert (await b.list_models()).items == []
            with pytest.raises(NotFoundError):
                await b.download_model(job.result.version)
            with pytest.raises(NotFoundError):
                await b.promote_model(job.result.version)
    finally:
        await server.stop()


BAD = [
    ("POST", "/jobs/fine-tune", b"{", 400),
    ("POST", "/jobs/fine-tune", b'{"steps": 3}', 422),
    ("POST", "/jobs/fine-tune", b'{"max_steps": 0}', 422),
    ("POST", "/jobs/fine-tune", b'{"learning_rate": "fast"}', 422),
    ("GET", "/jobs?state=done", None, 422),
    ("GET", "/jobs?limit=0", None, 422),
    ("GET", "/jobs/12345", None, 404),
    ("DELETE", "/jobs/12345", None, 404),
    ("GET", "/models/latest/download", None, 404),
    ("GET", "/models/v000042/download", None, 404),
    ("POST", "/models/v000042/promote", None, 404),
    ("POST", "/models/rollback", None, 409),
]


@pytest.mark.parametrize(("method", "path", "body", "status"), BAD)
async def test_bad_input(
    kz: KaizenClient, method: str, path: str, body: bytes | None, status: int
) -> None:
    await assert_refused(kz, method, path, body, status)


def _services(server: KaizenServer) -> Services:
    return server.app[SERVICES]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(ChildProcessError):
        finished_pid, _ = os.waitpid(pid, os.WNOHANG)
        if finished_pid == pid:
            return False
    return True


async def test_jobs_watch_draws_progress_until_the_end(data_dir: Path, tiny_model: Path) -> None:
    async with kaizen(data_dir, tiny_model) as (server, kz):
        await teach(kz)
        job = await kz.fine_tune()
        out = io.StringIO()
        status = await _watch(server.url, None, None, 0.05, out)
        lines = out.getvalue()
        assert status == 0
        assert f"job {job.id} [" in lines
        assert "12/12" in lines
        assert "succeeded" in lines
        done = await kz.get_job(job.id)
        assert render(done).endswith("succeeded")
        assert render(done).count("#") == 30
