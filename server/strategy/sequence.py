"""The agent sequence a strategy runs, from the agents available for the task.

The design names the strategies; the order within them is ours:
- single: the best agent alone;
- sequential: the agents in pipeline order (research → code → security → debug
  → test → review → docs → devops; unknown roles keep their place after these);
- parallel: the agents side by side, in the order given;
- hierarchical: the best agent coordinates, then the others;
- consensus: up to three agents solve the task and vote; with one agent, three
  independent runs of it.
"""

from schemas.strategy import ExecutionStrategy

PIPELINE = ("research", "code", "security", "debug", "test", "review", "docs", "devops")
CONSENSUS_SIZE = 3


def agent_sequence(strategy: ExecutionStrategy, agents: list[str]) -> list[str]:
    """`agents` ordered best first; never empty when `agents` is not."""
    unique = list(dict.fromkeys(agents))
    match strategy:
        case ExecutionStrategy.SINGLE:
            return unique[:1]
        case ExecutionStrategy.SEQUENTIAL:
            return sorted(unique, key=_pipeline_rank)
        case ExecutionStrategy.CONSENSUS:
            return unique[:CONSENSUS_SIZE] if len(unique) > 1 else unique * CONSENSUS_SIZE
        case _:
            return unique


def _pipeline_rank(agent: str) -> int:
    return PIPELINE.index(agent) if agent in PIPELINE else len(PIPELINE)
