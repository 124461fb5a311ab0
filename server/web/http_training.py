"""HTTP routes of fine-tuning jobs and the adapter registry."""

from aiohttp import web
from pydantic import TypeAdapter

from schemas import Page
from schemas.training import FineTuneRequest, Job, JobsQuery, JobTrigger, Models, Version
from server.web.bodies import path_id, path_text, read_body, read_query, reply
from server.web.context import principal, services
from server.web.route import Route

FINE_TUNE = TypeAdapter(FineTuneRequest)
VERSION: TypeAdapter[str] = TypeAdapter(Version)


def version_of(request: web.Request) -> str:
    return path_text(request, "version", VERSION, "adapter version")


async def fine_tune(request: web.Request) -> web.Response:
    body = await read_body(request, FINE_TUNE) if request.can_read_body else FineTuneRequest()
    training = services(request).training
    job = await training.submit(principal(request).tenant, JobTrigger.MANUAL, body)
    return reply(job, status=201)


async def list_jobs(request: web.Request) -> web.Response:
    query = read_query(request, JobsQuery)
    return reply(await services(request).training.jobs(principal(request).tenant, query))


async def get_job(request: web.Request) -> web.Response:
    return reply(await services(request).training.get(principal(request).tenant, path_id(request)))


async def cancel_job(request: web.Request) -> web.Response:
    training = services(request).training
    return reply(await training.cancel(principal(request).tenant, path_id(request)))


async def list_models(request: web.Request) -> web.Response:
    return reply(await services(request).training.models(principal(request).tenant))


async def download_model(request: web.Request) -> web.Response:
    version = version_of(request)
    body = await services(request).training.download(principal(request).tenant, version)
    headers = {"Content-Disposition": f'attachment; filename="{version}.tar.gz"'}
    return web.Response(body=body, content_type="application/gzip", headers=headers)


async def promote_model(request: web.Request) -> web.Response:
    training = services(request).training
    return reply(await training.promote(principal(request).tenant, version_of(request)))


async def rollback_model(request: web.Request) -> web.Response:
    return reply(await services(request).training.rollback(principal(request).tenant))


TRAINING_ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/jobs/fine-tune",
        fine_tune,
        "Queue a LoRA fine-tuning job",
        body=FineTuneRequest,
        reply=Job,
        status=201,
    ),
    Route("GET", "/jobs", list_jobs, "Jobs, newest first", query=JobsQuery, reply=Page[Job]),
    Route("GET", r"/jobs/{id:\d+}", get_job, "One job, with its progress and result", reply=Job),
    Route("DELETE", r"/jobs/{id:\d+}", cancel_job, "Cancel a job and stop its worker", reply=Job),
    Route("GET", "/models", list_models, "Adapter versions and the current one", reply=Models),
    Route(
        "GET",
        "/models/{version}/download",
        download_model,
        "An adapter version as a tar.gz of its PEFT directory and manifest",
    ),
    Route(
        "POST",
        "/models/{version}/promote",
        promote_model,
        "Make a version current (announced on the models channel)",
        reply=Models,
    ),
    Route(
        "POST",
        "/models/rollback",
        rollback_model,
        "Go back to the previous adapter (announced on the models channel)",
        reply=Models,
    ),
)
