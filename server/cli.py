"""`kaizen serve`, `kaizen token create|list|revoke` and `kaizen jobs list|watch`."""

import argparse
import asyncio
import gc
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import uvloop
from pydantic import ValidationError

import server
from server.auth.service import create_token, info
from server.auth.store import TokenStore
from server.cli_jobs import CommandError, add_jobs_commands
from server.core.errors import KaizenServerError
from server.core.logs import setup_logging
from server.core.settings import Settings
from server.db.database import Database
from server.runner import KaizenServer
from server.web.context import SERVICES

T = TypeVar("T")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except (KaizenServerError, ValidationError) as exc:
        print(f"kaizen: {exc}", file=sys.stderr)
        return 2
    except CommandError as exc:
        print(f"kaizen: {exc}", file=sys.stderr)
        return exc.status
    return result


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kaizen", description="The Kaizen learning server.")
    top.add_argument("--version", action="version", version=server.__version__)
    commands = top.add_subparsers(required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the server")
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        helptext = f"{field.description} (default: {field.default}; env KAIZEN_{name.upper()})"
        if field.annotation is bool:
            serve.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=None, help=helptext
            )
        else:
            serve.add_argument(flag, default=None, help=helptext)
    serve.set_defaults(run=run_serve)
    _token_commands(commands.add_parser("token", help="manage bearer tokens"))
    add_jobs_commands(commands.add_parser("jobs", help="follow fine-tuning jobs"))
    return top


def _token_commands(token: argparse.ArgumentParser) -> None:
    verbs = token.add_subparsers(required=True, metavar="VERB")
    create = verbs.add_parser("create", help="create a token; prints it once")
    create.add_argument("--agent", required=True)
    listing = verbs.add_parser("list", help="list a tenant's tokens")
    revoke = verbs.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id")
    for verb, run in ((create, token_create), (listing, token_list), (revoke, token_revoke)):
        verb.add_argument("--tenant", required=True)
        verb.add_argument("--data-dir", default=None, help="default: KAIZEN_DATA_DIR or ./data")
        verb.set_defaults(run=run)


def run_serve(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in Settings.model_fields}
    settings = Settings.load(overrides)
    setup_logging(settings.log_path, settings.log_level)
    uvloop.run(_serve(settings))
    return 0


async def _serve(settings: Settings) -> None:
    # Handlers first: a SIGTERM that lands during start-up must still shut down in order.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    kaizen = KaizenServer(settings)
    url = await kaizen.start()
    tune_gc()
    mode = kaizen.app[SERVICES].auth.mode.value
    print(
        f"Kaizen {server.__version__} listening on {url} (data: {settings.data_dir}, auth: {mode})",
        flush=True,
    )
    await stop.wait()
    await kaizen.stop()


def tune_gc() -> None:
    """Freeze what start-up allocated and collect the young generation less often.
    Cyclic GC passes over the whole heap were the main source of ack-latency
    outliers: at half the peak ingest rate they took p99 from about 17 ms to
    50 to 70 ms (bench/ingest.py, A/B with the GC off)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


async def _with_store(args: argparse.Namespace, work: Callable[[TokenStore], Awaitable[T]]) -> T:
    settings = Settings.load({"data_dir": args.data_dir})
    db = Database(settings.db_path, exclusive=False)
    await db.open()
    try:
        return await work(TokenStore(lambda: db.writer, db.fetch))
    finally:
        await db.close()


def token_create(args: argparse.Namespace) -> int:
    created = asyncio.run(_with_store(args, lambda s: create_token(s, args.tenant, args.agent)))
    print(f"id:     {created.id}\ntenant: {created.tenant}\nagent:  {created.agent}")
    print(f"token:  {created.token}\n(shown once: store it now)")
    return 0


def token_list(args: argparse.Namespace) -> int:
    records = asyncio.run(_with_store(args, lambda s: s.page(args.tenant, "", 10_000)))
    if not records:
        print(f"no tokens in tenant {args.tenant}; create one with `kaizen token create`")
        return 0
    print(f"{'ID':<{len(records[0].id)}}  {'AGENT':<20} {'CREATED':<16}  STATE")
    for t in map(info, records):
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        print(f"{t.id}  {t.agent:<20} {t.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


def token_revoke(args: argparse.Namespace) -> int:
    revoked = asyncio.run(
        _with_store(args, lambda s: s.revoke(args.tenant, args.token_id, time.time()))
    )
    if not revoked:
        print(f"kaizen: no active token {args.token_id} in tenant {args.tenant}", file=sys.stderr)
        return 1
    print(f"revoked {args.token_id}")
    return 0
