"""`SyncKaizenClient`: the same SDK for agents that are not async.

It runs a private event loop in a daemon thread and waits on each call.
"""

import asyncio
import atexit
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from client._chat import ChatSession
from client._client import KaizenClient
from schemas import Health, Interaction, Learning, ScoredLearning, Stats, StoredInteraction
from schemas.chat import MessageAdded, SessionInfo

T = TypeVar("T")


class SyncKaizenClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 30.0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="kaizen-sync", daemon=True
        )
        self._thread.start()
        self._client = KaizenClient(base_url, token=token, timeout=timeout)
        self._closed = False

    def __enter__(self) -> "SyncKaizenClient":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Close the client and stop its loop. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def health(self) -> Health:
        return self._run(self._client.health())

    def stats(self) -> Stats:
        return self._run(self._client.stats())

    def record_interaction(self, **fields: Any) -> int:
        """Same arguments as `KaizenClient.record_interaction`."""
        return self._run(self._client.record_interaction(**fields))

    def record_interactions(self, items: Sequence[Interaction]) -> list[int]:
        return self._run(self._client.record_interactions(items))

    def get_interaction(self, interaction_id: int) -> StoredInteraction:
        return self._run(self._client.get_interaction(interaction_id))

    def get_relevant_learnings(
        self, task_description: str | None = None, **query: Any
    ) -> list[ScoredLearning]:
        """Same arguments as `KaizenClient.get_relevant_learnings`."""
        return self._run(self._client.get_relevant_learnings(task_description, **query))

    def get_learning(self, learning_id: int) -> Learning:
        return self._run(self._client.get_learning(learning_id))

    def session(
        self,
        session_id: str | None = None,
        *,
        agent: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> "SyncChatSession":
        """Start a chat session. Use it with `with`, or rely on process exit: an
        open session is ended by an `atexit` hook (not after os._exit or SIGKILL;
        the server's idle timeout ends those)."""
        starter = self._client.session(session_id, agent=agent, metadata=metadata)
        opened = SyncChatSession(self, self._run(starter.__aenter__()))
        atexit.register(opened.end)
        return opened


class SyncChatSession:
    def __init__(self, owner: SyncKaizenClient, session: ChatSession) -> None:
        self._owner = owner
        self._session = session

    @property
    def id(self) -> str:
        return self._session.id

    def log(self, role: str, content: str, metadata: dict[str, Any] | None = None) -> MessageAdded:
        return self._owner._run(self._session.log(role, content, metadata))

    def end(self) -> SessionInfo | None:
        """End the session. Idempotent; a no-op once the client is closed."""
        atexit.unregister(self.end)
        if self._session.ended or self._owner.closed:
            return self._session.info if self._session.ended else None
        return self._owner._run(self._session.end())

    def __enter__(self) -> "SyncChatSession":
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end()
