"""Numbered schema migrations, applied in order at start; `PRAGMA user_version`
records the last one applied. Append only: never edit a released migration."""

MIGRATIONS: tuple[str, ...] = (
    # 1: interactions, tokens, mining state and learnings
    """
    CREATE TABLE interactions (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        agent_type TEXT NOT NULL,
        success INTEGER NOT NULL,
        session_id TEXT,
        recorded_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX interactions_by_tenant ON interactions (tenant, id);
    CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        agent TEXT NOT NULL,
        hash BLOB NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        revoked_at REAL
    );
    CREATE INDEX tokens_by_tenant ON tokens (tenant, id);
    CREATE TABLE clusters (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        terms TEXT NOT NULL,
        example TEXT NOT NULL
    );
    CREATE TABLE patterns (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        cluster_id INTEGER NOT NULL,
        agent_type TEXT NOT NULL,
        signature TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        success_time REAL NOT NULL,
        failure_time REAL NOT NULL,
        success_evidence TEXT NOT NULL,
        failure_evidence TEXT NOT NULL,
        claims TEXT NOT NULL,
        PRIMARY KEY (tenant, key)
    );
    CREATE TABLE learnings (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        pattern_key TEXT NOT NULL,
        agent_type TEXT NOT NULL,
        statement TEXT NOT NULL,
        task_example TEXT NOT NULL,
        actions TEXT NOT NULL,
        evidence TEXT NOT NULL,
        support INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        success_rate REAL NOT NULL,
        confidence REAL NOT NULL,
        avg_completion_time REAL,
        terms TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        UNIQUE (tenant, type, pattern_key)
    );
    CREATE INDEX learnings_by_confidence ON learnings (tenant, confidence DESC);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
)


def pending(user_version: int) -> list[tuple[int, str]]:
    """(number, script) of each migration after `user_version`."""
    return [(n, sql) for n, sql in enumerate(MIGRATIONS, start=1) if n > user_version]
