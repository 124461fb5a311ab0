"""SQL text for the knowledge hub's tables (migration 2)."""

from server.db.writer import Insert

ALL_CHANNELS = """
SELECT c.tenant, c.name, c.epoch, max(c.last_seq, coalesce(max(k.seq), 0)), c.created_at
FROM channels c LEFT JOIN knowledge k ON k.tenant = c.tenant AND k.channel = c.name
GROUP BY c.tenant, c.name
"""
INSERT_CHANNEL = (
    "INSERT OR IGNORE INTO channels (tenant, name, epoch, created_at) VALUES (?, ?, ?, ?)"
)
DELETE_CHANNEL = "DELETE FROM channels WHERE tenant = ? AND name = ?"
DELETE_CHANNEL_FTS = """
DELETE FROM knowledge_fts WHERE rowid IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ?)
"""
DELETE_CHANNEL_VOTES = """
DELETE FROM knowledge_votes WHERE knowledge_id IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ?)
"""
DELETE_CHANNEL_KNOWLEDGE = "DELETE FROM knowledge WHERE tenant = ? AND channel = ?"
MAX_KNOWLEDGE_ID = "SELECT coalesce(max(id), 0) FROM knowledge"

INSERT_KNOWLEDGE = Insert(
    "INSERT INTO knowledge (id, tenant, channel, seq, rank, kind, source_agent, tags, "
    "created_at, body) VALUES",
    10,
)
INSERT_FTS = Insert("INSERT INTO knowledge_fts (rowid, title, content, tags) VALUES", 4)

HISTORY = """
SELECT seq, rank, kind, body FROM knowledge
WHERE tenant = ? AND channel = ? AND seq > ? AND seq <= ? AND created_at >= ?
ORDER BY seq LIMIT ?
"""

_COLUMNS = "k.id, k.channel, k.seq, k.body, k.votes, k.applications, k.views"
GET_KNOWLEDGE = f"SELECT {_COLUMNS} FROM knowledge k WHERE k.tenant = ? AND k.id = ?"
ADD_VIEW = "UPDATE knowledge SET views = views + 1 WHERE tenant = ? AND id = ?"
HAS_VOTED = "SELECT 1 FROM knowledge_votes WHERE knowledge_id = ? AND agent = ?"
INSERT_VOTE = "INSERT OR IGNORE INTO knowledge_votes (knowledge_id, agent) VALUES (?, ?)"
COUNT_VOTES = """
UPDATE knowledge SET votes = (SELECT count(*) FROM knowledge_votes WHERE knowledge_id = ?)
WHERE tenant = ? AND id = ?
"""
ADD_APPLICATION = "UPDATE knowledge SET applications = applications + 1 WHERE tenant = ? AND id = ?"

PRUNE_FTS = """
DELETE FROM knowledge_fts WHERE rowid IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ? AND seq <= ?)
"""
PRUNE_VOTES = """
DELETE FROM knowledge_votes WHERE knowledge_id IN
    (SELECT id FROM knowledge WHERE tenant = ? AND channel = ? AND seq <= ?)
"""
PRUNE = "DELETE FROM knowledge WHERE tenant = ? AND channel = ? AND seq <= ?"
SAVE_LAST_SEQ = "UPDATE channels SET last_seq = max(last_seq, ?) WHERE tenant = ? AND name = ?"
EXPIRED_CUTS = """
SELECT tenant, channel, max(seq) FROM knowledge WHERE created_at < ? GROUP BY tenant, channel
"""


def search(*, text: bool, channels: int, tags: int, kind: bool, after_id: bool) -> str:
    """A knowledge query with the filters asked for. With `text`, rows are ranked by
    FTS5's BM25 (best first, offset paginated); without, newest first (keyset)."""
    where = ["k.tenant = ?", "k.rank >= ?"]
    if channels:
        where.append(f"k.channel IN ({', '.join('?' * channels)})")
    where += ["instr(',' || k.tags || ',', ?) > 0"] * tags
    if kind:
        where.append("k.kind = ?")
    if text:
        where.append("knowledge_fts MATCH ?")
        return (
            f"SELECT {_COLUMNS} FROM knowledge_fts JOIN knowledge k ON k.id = knowledge_fts.rowid "
            f"WHERE {' AND '.join(where)} ORDER BY bm25(knowledge_fts), k.id DESC LIMIT ? OFFSET ?"
        )
    if after_id:
        where.append("k.id < ?")
    return (
        f"SELECT {_COLUMNS} FROM knowledge k WHERE {' AND '.join(where)} ORDER BY k.id DESC LIMIT ?"
    )


def popular(channels: int) -> str:
    """Ranked by popularity = votes + 2 · applications (server/hub/popularity.py)."""
    where = ["k.tenant = ?", "(k.votes > 0 OR k.applications > 0)"]
    if channels:
        where.append(f"k.channel IN ({', '.join('?' * channels)})")
    return (
        f"SELECT {_COLUMNS} FROM knowledge k WHERE {' AND '.join(where)} "
        "ORDER BY k.votes + 2 * k.applications DESC, k.id DESC LIMIT ?"
    )
