"""`kaizen jobs list|watch`: follow fine-tuning jobs of a running server.

`watch` polls `GET /jobs/{id}` and redraws one progress line until the job ends
(the same progress the server pushes on the `jobs` channel).
"""

import argparse
import asyncio
import os
import sys
from typing import IO, TypeVar

import aiohttp
from pydantic import BaseModel, ValidationError
from yarl import URL

from schemas import ErrorBody, Page
from schemas.training import Job, JobState

M = TypeVar("M", bound=BaseModel)

BAR_WIDTH = 30
FINAL = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
DEFAULT_URL = "http://127.0.0.1:8080"
# A server that accepts the connection and never answers must not hang the command.
TIMEOUT = aiohttp.ClientTimeout(total=30)


class CommandError(Exception):
    """What went wrong, in one line for the user, and the exit status: 1 when the
    server is unreachable or refuses, 2 when the command line must change."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_jobs_commands(jobs: argparse.ArgumentParser) -> None:
    verbs = jobs.add_subparsers(required=True, metavar="VERB")
    listing = verbs.add_parser("list", help="list recent jobs")
    watch = verbs.add_parser("watch", help="show a job's progress as a bar until it ends")
    watch.add_argument("job_id", type=int, nargs="?", help="default: the newest job")
    watch.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    for verb, run in ((listing, run_list), (watch, run_watch)):
        verb.add_argument(
            "--url",
            default=os.environ.get("KAIZEN_URL", DEFAULT_URL),
            help=f"the server's base URL (default: KAIZEN_URL or {DEFAULT_URL})",
        )
        verb.add_argument(
            "--token",
            default=os.environ.get("KAIZEN_TOKEN") or None,
            help="bearer token, from `kaizen token create` (default: KAIZEN_TOKEN; "
            "a server on 127.0.0.1 without tokens needs none)",
        )
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
    try:
        return asyncio.run(_watch(args.url, args.token, args.job_id, args.interval, sys.stdout))
    except KeyboardInterrupt:
        # Ctrl-C is how one stops watching: end the line, no traceback.
        print(file=sys.stdout)
        return 130


def _session(url: str, token: str | None) -> aiohttp.ClientSession:
    base = URL(url)
    if base.scheme not in ("http", "https") or not base.host:
        raise CommandError(f"--url must be like {DEFAULT_URL}, not {url!r}", status=2)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # aiohttp's base_url takes no path part: requests go to the origin.
    return aiohttp.ClientSession(base.origin(), headers=headers, timeout=TIMEOUT)


async def _get(
    http: aiohttp.ClientSession, url: str, path: str, params: dict[str, str] | None = None
) -> bytes:
    """The body of a 200 reply; any other outcome becomes a CommandError."""
    try:
        async with http.get(path, params=params) as resp:
            status, body = resp.status, await resp.read()
    except (aiohttp.ClientConnectionError, TimeoutError) as exc:
        raise CommandError(f"no Kaizen server answers at {url} ({_reason(exc)})") from None
    if status == 401:
        raise CommandError(
            f"the server wants a token: pass --token or set KAIZEN_TOKEN ({_server_message(body)})",
            status=2,
        )
    if status != 200:
        raise CommandError(f"GET {path}: HTTP {status}: {_server_message(body)}")
    return body


def _reason(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _server_message(body: bytes) -> str:
    """The message of an error reply, or its first bytes if it is not one."""
    try:
        return ErrorBody.model_validate_json(body).error.message
    except ValidationError:
        return body[:200].decode(errors="replace").strip() or "no body"


def _decode(model: type[M], body: bytes, url: str) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError:
        raise CommandError(f"{url} answered with something that is not Kaizen's") from None


async def _list(url: str, token: str | None, out: IO[str]) -> int:
    async with _session(url, token) as http:
        page = await _page(http, url)
    if not page.items:
        print("no jobs", file=out)
    for job in page.items:
        print(f"{job.id}\t{job.state.value}\t{job.trigger.value}\t{summary(job)}", file=out)
    return 0


async def _watch(
    url: str, token: str | None, job_id: int | None, interval: float, out: IO[str]
) -> int:
    """Redraw until the job ends; exit status 0 when it succeeded."""
    async with _session(url, token) as http:
        if job_id is None:
            newest = (await _page(http, url, limit="1")).items
            if not newest:
                print("no jobs", file=out)
                return 1
            job_id = newest[0].id
        while True:
            job = _decode(Job, await _get(http, url, f"/jobs/{job_id}"), url)
            print("\r" + render(job), end="", file=out, flush=True)
            if job.state in FINAL:
                print("\n" + summary(job), file=out)
                return 0 if job.state is JobState.SUCCEEDED else 1
            await asyncio.sleep(interval)


async def _page(http: aiohttp.ClientSession, url: str, **params: str) -> Page[Job]:
    return _decode(Page[Job], await _get(http, url, "/jobs", params or None), url)
