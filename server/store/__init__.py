"""Persistence. The only package that writes SQL."""

from server.store.base import Store
from server.store.sqlite import SqliteStore

__all__ = ["SqliteStore", "Store"]
