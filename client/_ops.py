"""Each SDK method names the operation it performs (schemas/ops.py), so a test
can hold the SDK against the table: every operation has a method, and every
method names an operation and sends that operation's method and path."""

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


def operation(name: str) -> Callable[[F], F]:
    def tag(fn: F) -> F:
        fn.__kaizen_op__ = name  # type: ignore[attr-defined]
        return fn

    return tag


def operation_of(fn: object) -> str | None:
    return getattr(fn, "__kaizen_op__", None)
