"""`SyncKaizenClient`: the same SDK for agents that are not async.

It runs a private event loop in a daemon thread and waits on each call.
"""

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from types import TracebackType
from typing import Any, TypeVar

from client._client import KaizenClient
from schemas import Health, Interaction, Learning, ScoredLearning, Stats, StoredInteraction

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
