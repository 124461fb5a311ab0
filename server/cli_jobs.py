"""`kaizen jobs list|watch`: follow fine-tuning jobs of a running server.

`watch` polls `GET /jobs/{id}` and redraws one progress line until the job ends
(the same progress the server pushes on the `jobs` channel).
"""

import argparse
import asyncio
import sys
from typing import IO

import aiohttp

from schemas import Page
from schemas.training import Job, JobState

BAR_WIDTH = 30
FINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


def add_jobs_commands(jobs: argparse.ArgumentParser) -> None:
    verbs = jobs.add_subparsers(required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="list recent jobs")
    watch = verbs.add_parser("watch", help="show a job's progress as a bar until it ends")
    watch.add_argument("job_id", type=int, nargs="?", help="default: the newest job")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    for verb, run in ((listing, run_list), (watch, run_watch)):
        verb.add_argument("--url", default="http://127.0.0.1:8080")
        verb.add_argument("--token", default=None)
        verb.set_defaults(run=run)


def render(job: Job) -> str:
    """One line: state, a bar of steps done, loss and ETA."""
    p = job.progress
    if p is None:
        return f"job {job.id} {job.state.value}"
    done = p.step / p.total_steps if p.total_steps else 0.0
    filled = round(done * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    line = f"job {job.id} [{bar}] {p.step}/{p.total_steps} loss {p.loss:.4f} eta {p.eta_s:.0f}s"
    return f"{line} {job.state.value}"


def summary(job: Job) -> str:
    if job.result is not None:
        verdict = "promoted" if job.result.promoted else "kept the current adapter"
        return f"{job.result.version} {verdict}: {job.result.reason}"
    return job.error or job.state.value


def run_list(args: argparse.Namespace) -> int:
    return asyncio.run(_list(args.url, args.token, sys.stdout))


def run_watch(args: argparse.Namespace) -> int:
    return asyncio.run(_watch(args.url, args.token, args.job_id, args.interval, sys.stdout))


def _session(url: str, token: str | None) -> aiohttp.ClientSession:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return aiohttp.ClientSession(url, headers=headers)


async def _list(url: str, token: str | None, out: IO[str]) -> int:
    async with _session(url, token) as http, http.get("/jobs") as resp:
        page = Page[Job].model_validate_json(await resp.read())
    for job in page.items:
        print(f"{job.id}\t{job.state.value}\t{job.trigger.value}\t{summary(job)}", file=out)
    return 0


async def _watch(
    url: str, token: str | None, job_id: int | None, interval: float, out: IO[str]
) -> int:
    """Redraw until the job ends; exit status 0 when it succeeded."""
    async with _session(url, token) as http:
        if job_id is None:
            async with http.get("/jobs", params={"limit": "1"}) as resp:
                newest = Page[Job].model_validate_json(await resp.read()).items
            if not newest:
                print("no jobs", file=out)
                return 1
            job_id = newest[0].id
        while True:
            async with http.get(f"/jobs/{job_id}") as resp:
                if resp.status != 200:
                    print(f"job {job_id}: HTTP {resp.status}", file=out)
                    return 1
                job = Job.model_validate_json(await resp.read())
            print("\r" + render(job), end="", file=out, flush=True)
            if job.state in FINAL:
                print("\n" + summary(job), file=out)
                return 0 if job.state is JobState.SUCCEEDED else 1
            await asyncio.sleep(interval)
