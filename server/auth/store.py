"""Tokens: only a digest of each is stored, beside its tenant and agent."""

from collections.abc import Callable
from dataclasses import dataclass

from server.db.database import Fetch
from server.db.writer import Writer

INSERT_TOKEN = "INSERT INTO tokens (id, tenant, agent, hash, created_at) VALUES (?, ?, ?, ?, ?)"
_TOKEN_COLUMNS = "id, tenant, agent, created_at, revoked_at"
FIND_TOKEN = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE hash = ?"
LIST_TOKENS = f"SELECT {_TOKEN_COLUMNS} FROM tokens WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?"
TOKEN_ACTIVE_IN_TENANT = "SELECT 1 FROM tokens WHERE tenant = ? AND id = ? AND revoked_at IS NULL"
REVOKE_TOKEN = "UPDATE tokens SET revoked_at = ? WHERE tenant = ? AND id = ? AND revoked_at IS NULL"
COUNT_ACTIVE_TOKENS = "SELECT count(*) FROM tokens WHERE revoked_at IS NULL"


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: str
    tenant: str
    agent: str
    created_at: float
    revoked_at: float | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class TokenStore:
    def __init__(self, writer: Callable[[], Writer], fetch: Fetch) -> None:
        self._writer = writer
        self._fetch = fetch

    async def insert(self, record: TokenRecord, digest: bytes) -> None:
        values = (record.id, record.tenant, record.agent, digest, record.created_at)
        await self._writer().submit([(INSERT_TOKEN, [values])])

    async def revoke(self, tenant: str, token_id: str, now: float) -> bool:
        found = await self._fetch(TOKEN_ACTIVE_IN_TENANT, (tenant, token_id))
        if not found:
            return False
        await self._writer().submit([(REVOKE_TOKEN, [(now, tenant, token_id)])])
        return True

    async def find(self, digest: bytes) -> TokenRecord | None:
        rows = await self._fetch(FIND_TOKEN, (digest,))
        return TokenRecord(*rows[0]) if rows else None

    async def page(self, tenant: str, after_id: str, limit: int) -> list[TokenRecord]:
        rows = await self._fetch(LIST_TOKENS, (tenant, after_id, limit))
        return [TokenRecord(*r) for r in rows]

    async def active_count(self) -> int:
        rows = await self._fetch(COUNT_ACTIVE_TOKENS, ())
        return int(rows[0][0])
