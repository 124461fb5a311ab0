"""Tokens and tenants: who is calling, and which tenant they see.

Tokens are `kz_<id>_<secret>` with a 256-bit secret; only the SHA-256 of the whole
token is stored. A fast hash suffices for such high-entropy secrets (unlike
passwords, they cannot be guessed from a dictionary). Lookups are cached for
`token_cache_ttl_s`, which bounds how long a revocation made by another process
(the CLI) takes to bite; revocations through the server bite at once.
"""

import enum
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from schemas import Page, TokenCreate, TokenCreated, TokenInfo
from server.auth.store import TokenRecord, TokenStore
from server.core.clock import utc
from server.core.cursor import decode_cursor, keyset_page
from server.core.errors import Forbidden, NotFound, Unauthorized

OPEN_TENANT = "default"


class AuthMode(enum.Enum):
    OPEN = "open"
    TOKENS = "tokens"


@dataclass(frozen=True, slots=True)
class Principal:
    tenant: str
    agent: str | None
    token_id: str | None


OPEN_PRINCIPAL = Principal(OPEN_TENANT, None, None)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> tuple[str, str]:
    """(token id, full token). The id is public; the whole token is the secret."""
    token_id = secrets.token_hex(6)
    return token_id, f"kz_{token_id}_{secrets.token_urlsafe(32)}"


def info(record: TokenRecord) -> TokenInfo:
    revoked = utc(record.revoked_at) if record.revoked_at is not None else None
    return TokenInfo(
        id=record.id,
        tenant=record.tenant,
        agent=record.agent,
        created_at=utc(record.created_at),
        revoked_at=revoked,
    )


async def create_token(store: TokenStore, tenant: str, agent: str) -> TokenCreated:
    """Create and store a token; the secret is in the reply only."""
    token_id, token = new_token()
    record = TokenRecord(token_id, tenant, agent, time.time(), None)
    await store.insert(record, digest(token))
    return TokenCreated(**info(record).model_dump(), token=token)


class AuthService:
    def __init__(self, store: TokenStore, *, cache_ttl_s: float, require_auth: bool) -> None:
        self._store = store
        self._ttl = cache_ttl_s
        self._require = require_auth
        self._cache: dict[bytes, tuple[float, TokenRecord | None]] = {}
        self.mode = AuthMode.TOKENS
        self._recheck_at = 0.0
        self._on_revoke: list[Callable[[str], Awaitable[None]]] = []

    def on_revoke(self, listener: Callable[[str], Awaitable[None]]) -> None:
        """Await `listener(token_id)` after each revocation, before `revoke` returns."""
        self._on_revoke.append(listener)

    async def start(self) -> None:
        has_tokens = await self._store.active_count() > 0
        self.mode = AuthMode.TOKENS if has_tokens or self._require else AuthMode.OPEN
        self._recheck_at = time.monotonic() + self._ttl

    async def authenticate(self, bearer: str | None) -> Principal:
        """The caller behind `bearer`. Raises Unauthorized. Safe to cancel.
        An open server serves token-less callers as tenant `default` until a token
        exists: one presented, or one the CLI created (checked every cache TTL)."""
        if not bearer:
            if self._open_without_recheck() or await self._still_open():
                return OPEN_PRINCIPAL
            raise Unauthorized("a bearer token is required")
        key = digest(bearer)
        hit = self._cached(key)
        record = hit[1] if hit is not None else await self._lookup(key)
        if record is None or not record.active:
            raise Unauthorized("unknown or revoked token")
        self.mode = AuthMode.TOKENS
        return Principal(record.tenant, record.agent, record.id)

    def _open_without_recheck(self) -> bool:
        """Open, and not yet due for the token-count check: the common case of an
        open server, answered without awaiting a coroutine on every request."""
        return self.mode is AuthMode.OPEN and time.monotonic() < self._recheck_at

    async def _still_open(self) -> bool:
        if self.mode is AuthMode.OPEN and time.monotonic() >= self._recheck_at:
            self._recheck_at = time.monotonic() + self._ttl
            if await self._store.active_count() > 0:
                self.mode = AuthMode.TOKENS
        return self.mode is AuthMode.OPEN

    def _cached(self, key: bytes) -> tuple[float, TokenRecord | None] | None:
        """A live cache entry, checked without awaiting (the common case)."""
        hit = self._cache.get(key)
        return hit if hit is not None and hit[0] > time.monotonic() else None

    async def _lookup(self, key: bytes) -> TokenRecord | None:
        """Read the token from the store and cache the answer, absent ones too."""
        now = time.monotonic()
        record = await self._store.find(key)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, record)
        return record

    async def create(self, caller: Principal, request: TokenCreate) -> TokenCreated:
        """A token for the caller's tenant; an open server may name any tenant.
        The first token turns an open server into a token server."""
        agent, tenant = request.agent, request.tenant
        if tenant is not None and self.mode is AuthMode.TOKENS and tenant != caller.tenant:
            raise Forbidden("a token can only create tokens for its own tenant")
        created = await create_token(self._store, tenant or caller.tenant, agent)
        self.mode = AuthMode.TOKENS
        return created

    async def revoke(self, caller: Principal, token_id: str) -> None:
        if not await self._store.revoke(caller.tenant, token_id, time.time()):
            raise NotFound("no such active token", id=token_id)
        self._cache.clear()
        for listener in self._on_revoke:
            await listener(token_id)

    async def list(self, caller: Principal, limit: int, cursor: str | None) -> Page[TokenInfo]:
        after = decode_cursor(cursor, "after", str) or ""
        rows = await self._store.page(caller.tenant, after, limit + 1)
        items, next_cursor = keyset_page([info(r) for r in rows], limit, lambda t: t.id)
        return Page[TokenInfo](items=items, next_cursor=next_cursor)
