"""A route, declared once: it is added to the app and described in /openapi.json."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from pydantic import BaseModel


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    summary: str
    body: Any = None
    query: type[BaseModel] | None = None
    reply: Any = None
    status: int = 200
    public: bool = False
