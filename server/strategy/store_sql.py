"""SQL text of the strategy and performance tables."""

MAX_IDS = """
SELECT (SELECT coalesce(max(id), 0) FROM strategy_tasks),
       (SELECT coalesce(max(id), 0) FROM strategy_selections),
       (SELECT coalesce(max(id), 0) FROM executions)
"""
INSERT_TASK = "INSERT INTO strategy_tasks (id, tenant, created_at, body) VALUES (?, ?, ?, ?)"
GET_TASK = "SELECT body FROM strategy_tasks WHERE tenant = ? AND id = ?"
INSERT_SELECTION = """
INSERT INTO strategy_selections (id, tenant, task_id, strategy, complexity, contexts,
    created_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
"""
GET_SELECTION = """
SELECT id, task_id, strategy, complexity, contexts, body, outcome_at IS NOT NULL
FROM strategy_selections WHERE tenant = ? AND id = ?
"""
SET_OUTCOME = """
UPDATE strategy_selections SET success = ?, duration = ?, outcome_at = ?, outcome = ?
WHERE tenant = ? AND id = ? AND outcome_at IS NULL
"""
UPSERT_ARM = """
INSERT INTO strategy_arms (tenant, context, state) VALUES (?, ?, ?)
ON CONFLICT (tenant, context) DO UPDATE SET state = excluded.state
"""
ALL_ARMS = "SELECT tenant, context, state FROM strategy_arms"
SUCCESSFUL_DURATIONS = """
SELECT tenant, complexity, duration FROM strategy_selections
WHERE success = 1 ORDER BY outcome_at DESC LIMIT ?
"""
TASK_COUNT = "SELECT count(*) FROM strategy_tasks WHERE tenant = ?"
BY_STRATEGY = """
SELECT strategy, count(*), count(outcome_at), coalesce(sum(success), 0), max(outcome_at)
FROM strategy_selections WHERE tenant = ? GROUP BY strategy
"""
INSERT_EXECUTION = """
INSERT INTO executions (id, tenant, agent_type, task_category, success, at, body)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""
EXECUTIONS_OF_AGENT = """
SELECT body FROM executions WHERE tenant = ? AND agent_type = ? AND at >= ?
ORDER BY at DESC LIMIT ?
"""
EXECUTIONS = "SELECT body FROM executions WHERE tenant = ? AND at >= ? ORDER BY at DESC LIMIT ?"
EXECUTION_COUNT = "SELECT count(*) FROM executions WHERE tenant = ?"
