"""The training pool with real spawn worker processes and a real tiny Llama.

Each job starts a fresh interpreter that imports torch (a few seconds here), so the
tests wait for a job's first progress report before they cancel or kill it: by then
the worker is past its imports and inside the training loop.
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from server.training.pool import (
    JobCancelled,
    JobRun,
    PoolClosed,
    TrainingFailed,
    TrainingPool,
    WorkerDied,
    WorkerState,
)
from server.training.tiny import build_tiny_llama
from server.training.trainer import Progress, TrainSpec

PAIRS = [(f"what does the {a} cat say", "meow") for a in ("red", "big", "old", "new")] + [
    (f"what does the {a} dog say", "woof") for a in ("red", "big", "old", "new")
]
WAIT_S = 90  # a worker's first report: interpreter start, torch import, model load


@pytest.fixture(scope="module")
async def pool() -> AsyncIterator[TrainingPool]:
    """Shared by the tests, so each job finds the spare worker warmed during the last."""
    started = TrainingPool(workers=1, threads_per_worker=1, grace_s=2.0)
    await started.start()
    yield started
    await started.close()


@pytest.fixture(scope="module")
def tiny(pool: TrainingPool, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built after the pool has started, so its spare worker warms up meanwhile."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model")


def spec(tiny: Path, out: Path, steps: int, every: int = 1) -> TrainSpec:
    return TrainSpec(
        str(tiny),
        str(out),
        PAIRS,
        PAIRS[::3],
        max_steps=steps,
        learning_rate=1e-2,
        lora_dropout=0.0,
        batch_size=4,
        progress_every=every,
    )


def state_of(run: JobRun) -> WorkerState:
    """The state now (mypy keeps an earlier `assert run.state is ...` narrowed)."""
    return run.state


async def first_report(run: JobRun) -> Progress:
    async def first() -> Progress:
        async with contextlib.aclosing(run.events()) as events:
            async for progress in events:
                return progress
        raise AssertionError(f"job ended ({run.state.value}) before reporting")

    return await asyncio.wait_for(first(), WAIT_S)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_job_reports_progress_then_its_result(
    pool: TrainingPool, tiny: Path, tmp_path: Path
) -> None:
    handed: list[tuple[str, Progress]] = []
    run = await pool.submit(
        "job-1", spec(tiny, tmp_path / "out", 40, every=5), lambda job, p: handed.append((job, p))
    )
    reports = [progress async for progress in run.events()]
    result = await run.result()
    steps = [p.step for p in reports]
    assert steps == list(range(5, 41, 5)) and reports[0].total_steps == 40
    assert reports[0].eta_s > reports[len(reports) // 2].eta_s > reports[-1].eta_s == 0
    assert handed == [("job-1", p) for p in reports]
    assert result.steps == 40 and result.examples_per_s > 0
    assert result.held_out_loss is not None and result.base_held_out_loss is not None
    assert result.held_out_loss < result.base_held_out_loss
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert run.state is WorkerState.SUCCEEDED
    assert pool.get("job-1") is None


async def test_cancel_stops_the_worker_process(
    pool: TrainingPool, tiny: Path, tmp_path: Path
) -> None:
    run = await pool.submit("long", spec(tiny, tmp_path / "out", 1_000_000))
    await first_report(run)
    assert run.state is WorkerState.RUNNING and run.pid is not None and alive(run.pid)
    assert await pool.cancel("long")
    assert not alive(run.pid)
    with pytest.raises(JobCancelled):
        await run.result()
    assert state_of(run) is WorkerState.CANCELLED and run.exitcode == -signal.SIGTERM
    assert not await pool.cancel("long")  # gone already


async def test_a_killed_worker_fails_its_job_and_the_next_job_runs(
    pool: TrainingPool, tiny: Path, tmp_path: Path
) -> None:
    doomed = await pool.submit("doomed", spec(tiny, tmp_path / "a", 1_000_000))
    await first_report(doomed)
    assert doomed.pid is not None
    os.kill(doomed.pid, signal.SIGKILL)  # what the OOM killer does
    with pytest.raises(WorkerDied) as died:
        await doomed.result()
    assert died.value.exitcode == -signal.SIGKILL and doomed.state is WorkerState.DIED
    after = await pool.submit("after", spec(tiny, tmp_path / "b", 4, every=2))
    assert (await after.result()).steps == 4
    assert after.pid != doomed.pid


async def test_a_failing_job_reports_the_error(tmp_path: Path) -> None:
    pool = TrainingPool(prewarm=False)  # a cold worker fails before importing torch
    await pool.start()
    run = await pool.submit("broken", TrainSpec("any", str(tmp_path / "out"), train=[]))
    with pytest.raises(TrainingFailed) as failed:
        await run.result()
    assert failed.value.error_type == "ValueError" and "no training pairs" in str(failed.value)
    assert "Traceback" in failed.value.traceback_text and run.state is WorkerState.FAILED
    await pool.close()


async def test_close_cancels_every_job_and_is_idempotent(tiny: Path, tmp_path: Path) -> None:
    pool = TrainingPool(workers=1, grace_s=2.0, prewarm=False)
    await pool.start()
    starting = await pool.submit("starting", spec(tiny, tmp_path / "a", 1_000_000))
    queued = await pool.submit("queued", spec(tiny, tmp_path / "b", 4))
    while starting.pid is None:  # spawned, and still importing torch
        await asyncio.sleep(0.01)
    assert starting.state is WorkerState.STARTING and queued.state is WorkerState.QUEUED
    await asyncio.gather(pool.close(), pool.close())
    await pool.close()
    for run in (starting, queued):
        with pytest.raises(JobCancelled):
            await run.result()
    assert not alive(starting.pid) and queued.pid is None and pool.active() == []
    with pytest.raises(PoolClosed):
        await pool.submit("late", spec(tiny, tmp_path / "c", 4))
