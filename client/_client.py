"""`KaizenClient`: the async SDK, used as `async with KaizenClient(url, token=…) as kz`."""

import enum
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel

from client._build import local
from client._chat import SessionMethods
from client._http import call, call_bytes
from client._hub import HubMethods
from client._kb import KnowledgeBaseMixin
from client._learning import LearningMethods
from client._ops import operation
from client._performance import PerformanceMethods
from client._strategy import StrategyMethods
from client._training import TrainingMethods
from client._workflows import WorkflowMethods
from client.errors import KaizenError
from client.socket import KaizenSocket
from schemas import (
    Health,
    Interaction,
    InteractionBatch,
    Page,
    RecordResult,
    Stats,
    StoredInteraction,
    TokenCreate,
    TokenCreated,
    TokenInfo,
    encode,
)

M = TypeVar("M", bound=BaseModel)


class ClientState(enum.Enum):
    NEW = "new"
    OPEN = "open"
    CLOSED = "closed"


class KaizenClient(
    LearningMethods,
    HubMethods,
    KnowledgeBaseMixin,
    StrategyMethods,
    PerformanceMethods,
    WorkflowMethods,
    SessionMethods,
    TrainingMethods,
):
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._socket: KaizenSocket | None = None
        self.state = ClientState.NEW

    async def __aenter__(self) -> "KaizenClient":
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the WebSocket and the HTTP session. Idempotent."""
        self.state = ClientState.CLOSED
        if self._socket is not None:
            await self._socket.close()
        if self._session is not None:
            await self._session.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        if self.state is ClientState.CLOSED:
            raise KaizenError("client is closed")
        if self._session is None:
            headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
            headers["Content-Type"] = "application/json"
            self._session = aiohttp.ClientSession(
                self.base_url, headers=headers, timeout=aiohttp.ClientTimeout(total=self._timeout)
            )
            self.state = ClientState.OPEN
        return self._session

    @property
    def socket(self) -> KaizenSocket:
        """The WebSocket to `/ws`; it connects on first use and reconnects on its own."""
        if self._socket is None:
            self._socket = KaizenSocket(self.http, "/ws", timeout=self._timeout)
        return self._socket

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        result = await call(self.http, method, path, reply, **kwargs)
        assert result is not None
        return result

    async def _call_bytes(self, method: str, path: str) -> bytes:
        return await call_bytes(self.http, method, path)

    # -- system ----------------------------------------------------------------

    @operation("openapi")
    async def openapi(self) -> dict[str, Any]:
        """The server's OpenAPI 3.1 document."""
        async with self.http.get("/openapi.json") as resp:
            document: dict[str, Any] = await resp.json()
        return document

    @operation("health")
    async def health(self) -> Health:
        return await self._call("GET", "/healthz", Health)

    @operation("stats")
    async def stats(self) -> Stats:
        return await self._call("GET", "/stats", Stats)

    # -- interactions ----------------------------------------------------------

    @operation("record_interactions")
    async def record_interaction(
        self,
        *,
        agent_type: str,
        task_description: str,
        actions_taken: Sequence[dict[str, Any]] = (),
        results: Sequence[dict[str, Any]] = (),
        success: bool,
        completion_time: float,
        iterations: int = 1,
        errors_encountered: int = 0,
        metadata: dict[str, Any] | None = None,
        timestamp: datetime | None = None,
        session_id: str | None = None,
        volatile_fields: Sequence[str] = (),
        offered_learnings: Sequence[int] = (),
        applied_learnings: Sequence[int] = (),
    ) -> int:
        """Record one interaction; returns its id once
        stored. Each action is a dict with its type and its arguments in fields of
        their own (`{"type": "take", "object": "red apple"}`); `volatile_fields` names
        fields that say how a step went rather than what it did, beyond the default
        list (docs/protocol.md). `offered_learnings` and `applied_learnings` are the
        ids of the learnings this attempt was offered and followed."""
        item = local(
            Interaction,
            agent_type=agent_type,
            task_description=task_description,
            actions_taken=list(actions_taken),
            results=list(results),
            success=success,
            completion_time=completion_time,
            iterations=iterations,
            errors_encountered=errors_encountered,
            metadata=metadata or {},
            timestamp=timestamp,
            session_id=session_id,
            volatile_fields=list(volatile_fields),
            offered_learnings=list(offered_learnings),
            applied_learnings=list(applied_learnings),
        )
        return (await self.record_interactions([item]))[0]

    @operation("record_interactions")
    async def record_interactions(self, items: Sequence[Interaction]) -> list[int]:
        """Record a batch atomically; returns the ids in order."""
        body = encode(local(InteractionBatch, interactions=list(items)), exclude_none=True)
        result = await self._call("POST", "/interactions", RecordResult, body=body)
        return result.ids

    @operation("get_interaction")
    async def get_interaction(self, interaction_id: int) -> StoredInteraction:
        return await self._call("GET", f"/interactions/{interaction_id}", StoredInteraction)

    @operation("list_interactions")
    async def list_interactions(
        self, *, limit: int = 100, cursor: str | None = None
    ) -> Page[StoredInteraction]:
        params = {"limit": limit, "cursor": cursor}
        return await self._call("GET", "/interactions", Page[StoredInteraction], params=params)

    # -- learnings -------------------------------------------------------------

    # -- tokens ----------------------------------------------------------------

    @operation("create_token")
    async def create_token(self, agent: str, *, tenant: str | None = None) -> TokenCreated:
        body = encode(local(TokenCreate, agent=agent, tenant=tenant), exclude_none=True)
        return await self._call("POST", "/tokens", TokenCreated, body=body)

    @operation("list_tokens")
    async def list_tokens(self, *, limit: int = 100, cursor: str | None = None) -> Page[TokenInfo]:
        params = {"limit": limit, "cursor": cursor}
        return await self._call("GET", "/tokens", Page[TokenInfo], params=params)

    @operation("revoke_token")
    async def revoke_token(self, token_id: str) -> None:
        await call(self.http, "DELETE", f"/tokens/{token_id}", None)
