"""A growing matrix of unit vectors searched by cosine (a dot product, since rows
are L2-normalised). Only loaded with the `ml` extra, which brings numpy."""

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float32]


class VectorSet:
    def __init__(self, dimension: int, capacity: int = 64) -> None:
        self._rows = np.zeros((capacity, dimension), dtype=np.float32)
        self.keys: list[int] = []

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: int, vector: Vector) -> None:
        """Append a row; the matrix doubles when full (amortised O(1))."""
        if len(self.keys) == len(self._rows):
            grown = np.zeros((2 * len(self._rows), self._rows.shape[1]), dtype=np.float32)
            grown[: len(self.keys)] = self._rows
            self._rows = grown
        self._rows[len(self.keys)] = vector
        self.keys.append(key)

    def similarities(self, vector: Vector) -> Vector:
        """Cosine of `vector` to every row, in insertion order."""
        result: Vector = self._rows[: len(self.keys)] @ vector
        return result

    def nearest(self, vector: Vector) -> tuple[int, float] | None:
        """(key, cosine) of the closest row; the earliest row wins a tie."""
        if not self.keys:
            return None
        sims = self.similarities(vector)
        best = int(np.argmax(sims))
        return self.keys[best], float(sims[best])

    def top(self, vector: Vector, k: int) -> list[tuple[int, float]]:
        """(key, cosine) of the `k` closest rows, closest first."""
        if not self.keys or k < 1:
            return []
        sims = self.similarities(vector)
        k = min(k, len(sims))
        best = np.argpartition(-sims, k - 1)[:k]
        order = best[np.argsort(-sims[best], kind="stable")]
        return [(self.keys[int(i)], float(sims[i])) for i in order]
