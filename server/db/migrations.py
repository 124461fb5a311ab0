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
    # 2: the knowledge hub: channels, their messages (knowledge), votes, full-text index
    """
    CREATE TABLE channels (
        tenant TEXT NOT NULL,
        name TEXT NOT NULL,
        epoch TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        PRIMARY KEY (tenant, name)
    ) WITHOUT ROWID;
    CREATE TABLE knowledge (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        channel TEXT NOT NULL,
        seq INTEGER NOT NULL,
        rank INTEGER NOT NULL,
        kind TEXT NOT NULL,
        source_agent TEXT NOT NULL,
        tags TEXT NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL,
        votes INTEGER NOT NULL DEFAULT 0,
        applications INTEGER NOT NULL DEFAULT 0,
        views INTEGER NOT NULL DEFAULT 0,
        UNIQUE (tenant, channel, seq)
    );
    CREATE INDEX knowledge_by_tenant ON knowledge (tenant, id);
    CREATE INDEX knowledge_by_age ON knowledge (created_at);
    CREATE TABLE knowledge_votes (
        knowledge_id INTEGER NOT NULL,
        agent TEXT NOT NULL,
        PRIMARY KEY (knowledge_id, agent)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE knowledge_fts USING fts5(title, content, tags, tokenize='porter unicode61');
    """,
    # 3: the learning engine v2 (windowed patterns, six types, anomalies). Learnings
    # are derived data: drop them and re-mine every stored interaction.
    """
    DROP TABLE learnings;
    DROP TABLE patterns;
    DROP TABLE clusters;
    DELETE FROM meta WHERE key = 'extractor_cursor';
    CREATE TABLE clusters (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        terms TEXT NOT NULL,
        example TEXT NOT NULL,
        vector BLOB
    );
    CREATE TABLE patterns (
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (tenant, key)
    ) WITHOUT ROWID;
    CREATE TABLE behaviours (
        tenant TEXT NOT NULL,
        agent_type TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (tenant, agent_type)
    ) WITHOUT ROWID;
    CREATE TABLE learnings (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        type TEXT NOT NULL,
        key TEXT NOT NULL,
        status TEXT NOT NULL,
        agent_type TEXT NOT NULL,
        confidence REAL NOT NULL,
        last_seen REAL NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX learnings_by_confidence ON learnings (tenant, status, confidence DESC);
    CREATE VIRTUAL TABLE learnings_fts USING fts5(document, tokenize='porter unicode61');
    CREATE TABLE anomalies (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        agent_type TEXT NOT NULL,
        score REAL NOT NULL,
        seen_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX anomalies_by_tenant ON anomalies (tenant, id);
    """,
    # 4: adaptive strategies and the performance optimizer
    """
    CREATE TABLE strategy_tasks (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX strategy_tasks_by_tenant ON strategy_tasks (tenant, id);
    CREATE TABLE strategy_selections (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        task_id INTEGER NOT NULL,
        strategy TEXT NOT NULL,
        complexity INTEGER NOT NULL,
        contexts TEXT NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL,
        success INTEGER,
        duration REAL,
        outcome_at REAL,
        outcome BLOB
    );
    CREATE INDEX strategy_selections_by_tenant ON strategy_selections (tenant, id);
    CREATE TABLE strategy_arms (
        tenant TEXT NOT NULL,
        context TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (tenant, context)
    ) WITHOUT ROWID;
    CREATE TABLE executions (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        agent_type TEXT NOT NULL,
        task_category TEXT NOT NULL,
        success INTEGER NOT NULL,
        at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX executions_by_agent ON executions (tenant, agent_type, at);
    CREATE INDEX executions_by_time ON executions (tenant, at);
    """,
    # 5: the knowledge base: versioned, stateful items
    """
    CREATE TABLE kb_items (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        key TEXT NOT NULL,
        category TEXT NOT NULL,
        state TEXT NOT NULL,
        tags TEXT NOT NULL,
        version INTEGER NOT NULL,
        uses INTEGER NOT NULL,
        successes INTEGER NOT NULL,
        confidence REAL NOT NULL,
        origin TEXT NOT NULL,
        merged_into INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_used_at REAL,
        body BLOB NOT NULL,
        UNIQUE (tenant, key)
    );
    CREATE INDEX kb_items_by_tenant ON kb_items (tenant, id);
    CREATE INDEX kb_items_by_state ON kb_items (tenant, state, confidence DESC);
    CREATE TABLE kb_versions (
        tenant TEXT NOT NULL,
        item_id INTEGER NOT NULL,
        version INTEGER NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL,
        PRIMARY KEY (tenant, item_id, version)
    ) WITHOUT ROWID;
    """,
    # 6: workflow events and learner checkpoints; chat sessions, memory, training examples
    """
    CREATE TABLE workflow_batches (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        received_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE TABLE workflow_checkpoint (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        cursor INTEGER NOT NULL,
        state BLOB NOT NULL
    );
    CREATE TABLE chat_sessions (
        id TEXT NOT NULL,
        tenant TEXT NOT NULL,
        agent TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at REAL NOT NULL,
        last_activity REAL NOT NULL,
        ended_at REAL,
        metadata BLOB NOT NULL,
        report BLOB,
        PRIMARY KEY (tenant, id)
    ) WITHOUT ROWID;
    CREATE INDEX chat_sessions_by_state ON chat_sessions (state, last_activity);
    CREATE TABLE chat_messages (
        tenant TEXT NOT NULL,
        session_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        metadata BLOB NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (tenant, session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE memory_items (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        session_id TEXT NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL,
        at REAL NOT NULL,
        vector BLOB
    );
    CREATE INDEX memory_items_by_tenant ON memory_items (tenant, id);
    CREATE VIRTUAL TABLE memory_fts USING fts5(content, tokenize='porter unicode61');
    CREATE TABLE training_examples (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        source TEXT NOT NULL,
        context TEXT NOT NULL,
        instruction TEXT NOT NULL,
        output TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX training_examples_by_time ON training_examples (tenant, created_at);
    """,
    # 7: fine-tuning jobs
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY,
        tenant TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        body BLOB NOT NULL
    );
    CREATE INDEX jobs_by_tenant ON jobs (tenant, id);
    CREATE INDEX jobs_by_state ON jobs (state);
    """,
    # 8: feedback tallies: what applying each learning did, per cluster and tenant
    """
    CREATE TABLE effects (
        tenant TEXT NOT NULL,
        subject TEXT NOT NULL,
        state BLOB NOT NULL,
        PRIMARY KEY (tenant, subject)
    );
    """,
)


def pending(user_version: int) -> list[tuple[int, str]]:
    """(number, script) of each migration after `user_version`."""
    return [(n, sql) for n, sql in enumerate(MIGRATIONS, start=1) if n > user_version]
