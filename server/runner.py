"""Run the application on a socket: used by `kaizen serve` and by the tests."""

import enum
import logging

from aiohttp import web

from server.app import create_app
from server.core.clock import Clock
from server.core.settings import Settings


class ServerState(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class KaizenServer:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.state = ServerState.NEW
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        """Open the store, start services, bind; returns the base URL. Not safe to cancel."""
        s = self.settings
        access_log = logging.getLogger("aiohttp.access") if s.access_log else None
        self._runner = web.AppRunner(
            create_app(s, self.clock), access_log=access_log, shutdown_timeout=s.shutdown_timeout_s
        )
        try:
            await self._runner.setup()
            await web.TCPSite(self._runner, s.host, s.port).start()
        except BaseException:
            await self._runner.cleanup()
            self.state = ServerState.STOPPED
            raise
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
        self.state = ServerState.RUNNING
        return self.url

    @property
    def app(self) -> web.Application:
        if self._runner is None:
            raise RuntimeError("server not started")
        return self._runner.app

    async def stop(self) -> None:
        """Shut down in order (see `server.app`). Idempotent; not safe to cancel."""
        if self.state is not ServerState.RUNNING or self._runner is None:
            self.state = ServerState.STOPPED
            return
        self.state = ServerState.STOPPED
        await self._runner.cleanup()
