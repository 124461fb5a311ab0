"""Event-loop lag, measured from inside: a task asks to wake every `interval_s`
and records how late it woke (the same probe as Node's `monitorEventLoopDelay`).
A blocked loop shows as lag; /stats reports its percentiles over the last
`window_s`."""

import asyncio
import contextlib
import time
from collections import deque

from schemas.system import LoopLag


class LoopLagMonitor:
    def __init__(self, interval_s: float = 0.01, window_s: float = 60.0) -> None:
        self._interval = interval_s
        self._samples: deque[tuple[float, float]] = deque()
        self._window = window_s
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start sampling. Safe to cancel."""
        self._task = asyncio.create_task(self._run(), name="kaizen-loop-lag")

    async def stop(self) -> None:
        """Stop sampling. Idempotent."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self._interval)
            now = time.perf_counter()
            self._samples.append((now, max(0.0, now - before - self._interval)))
            while self._samples and self._samples[0][0] < now - self._window:
                self._samples.popleft()

    def snapshot(self) -> LoopLag:
        lags = sorted(lag for _, lag in self._samples)
        if not lags:
            return LoopLag(window_s=self._window, samples=0, p50_ms=0.0, p99_ms=0.0, max_ms=0.0)
        return LoopLag(
            window_s=self._window,
            samples=len(lags),
            p50_ms=1000 * lags[len(lags) // 2],
            p99_ms=1000 * lags[min(len(lags) - 1, int(0.99 * len(lags)))],
            max_ms=1000 * lags[-1],
        )
