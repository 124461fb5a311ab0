"""Performance Optimizer: pure logic over executions, no I/O.

The service loads `records.Execution`s (`records.execution_from_record` turns a
request body into one) and calls:

    summary.agent_performance(executions, agent_type, now, window_s, max_windows)
        -> AgentPerformance
    compare.compare(a, executions_a, b, executions_b) -> AgentComparison
    recommend.recommend(executions, agent_type, min_priority) -> list[Recommendation]
    bottlenecks.bottlenecks(executions, agent_type) -> list[Bottleneck]
    trend.trend(executions, now, window_s, max_windows) -> Trend
    summary.performance_stats(executions) -> PerformanceStats

`executions` is every agent type's executions (of one tenant) wherever peers serve
as baselines. agent_performance and compare raise `records.NoExecutionsError` (a
LookupError) for an agent type without executions.

Modules: `stats` (tests and estimators), `cells` (executions by agent type and
category), `peers` (each cell against its best peer), `signals` (tails, serial
chains, repeated work), `priority`, `trend`, `bottlenecks`, `recommend`, `compare`,
`summary`. The functions are not re-exported here: each shares its module's name.
"""
