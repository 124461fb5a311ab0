"""Chat sessions in the SDK: `async with kz.session() as s:
await s.log("user", text)` ends the session on the way out, which queues its
processing on the server."""

from types import TracebackType
from typing import Any, TypeVar

from pydantic import BaseModel

from client._build import local
from client._ops import operation
from schemas import encode
from schemas.chat import (
    ChatMessage,
    MemoryHits,
    MemoryQuery,
    MessageAdded,
    SessionInfo,
    SessionStart,
    SessionStats,
)

M = TypeVar("M", bound=BaseModel)


class ChatSession:
    """An open session. `end()` is idempotent."""

    def __init__(self, methods: "SessionMethods", info: SessionInfo) -> None:
        self._methods = methods
        self.info = info
        self.ended = False

    @property
    def id(self) -> str:
        return self.info.id

    async def log(
        self, role: str, content: str, metadata: dict[str, Any] | None = None
    ) -> MessageAdded:
        """Add a message; returns once it is stored."""
        return await self._methods.add_message(self.id, role, content, metadata)

    @operation("session_end")
    async def end(self) -> SessionInfo:
        """End the session (its processing is queued); later calls return the first's result."""
        if not self.ended:
            self.info = await self._methods.end_session(self.id)
            self.ended = True
        return self.info

    async def __aenter__(self) -> "ChatSession":
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.end()


class SessionStarter:
    """What `kz.session()` returns: await it, or use it with `async with`."""

    def __init__(self, methods: "SessionMethods", request: SessionStart) -> None:
        self._methods = methods
        self._request = request
        self._session: ChatSession | None = None

    def __await__(self) -> Any:
        return self._methods.start_session_with(self._request).__await__()

    async def __aenter__(self) -> ChatSession:
        self._session = await self._methods.start_session_with(self._request)
        return self._session

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.end()


class SessionMethods:
    """Needs `_call` from the client it is mixed into."""

    async def _call(self, method: str, path: str, reply: type[M], **kwargs: Any) -> M:
        raise NotImplementedError

    @operation("session_start")
    def session(
        self,
        session_id: str | None = None,
        *,
        agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> SessionStarter:
        """Start a chat session: `async with kz.session() as s` ends it on exit."""
        request = local(SessionStart, session_id=session_id, agent=agent, metadata=metadata or {})
        return SessionStarter(self, request)

    @operation("session_start")
    async def start_session_with(self, request: SessionStart) -> ChatSession:
        body = encode(request, exclude_none=True)
        return ChatSession(self, await self._call("POST", "/sessions", SessionInfo, body=body))

    @operation("session_message")
    async def add_message(
        self, session_id: str, role: str, content: str, metadata: dict[str, Any] | None = None
    ) -> MessageAdded:
        body = encode(local(ChatMessage, role=role, content=content, metadata=metadata or {}))
        path = f"/sessions/{session_id}/messages"
        return await self._call("POST", path, MessageAdded, body=body)

    @operation("session_end")
    async def end_session(self, session_id: str) -> SessionInfo:
        return await self._call("POST", f"/sessions/{session_id}/end", SessionInfo)

    @operation("get_session")
    async def get_session(self, session_id: str) -> SessionInfo:
        return await self._call("GET", f"/sessions/{session_id}", SessionInfo)

    @operation("memory_search")
    async def search_memory(
        self, query: str, *, session_id: str | None = None, limit: int = 10
    ) -> MemoryHits:
        """Conversation memory by meaning."""
        q = local(MemoryQuery, query=query, session_id=session_id, limit=limit)
        params = q.model_dump(exclude_none=True)
        return await self._call("GET", "/memory/search", MemoryHits, params=params)

    @operation("session_stats")
    async def get_session_stats(self) -> SessionStats:
        return await self._call("GET", "/sessions/stats", SessionStats)
