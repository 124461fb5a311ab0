"""The Adaptive Strategy System: task analysis, strategy
selection and outcomes."""

from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.common import Id, Name, Strict
from schemas.interactions import JsonObject


class Complexity(IntEnum):
    """The five levels, ordered so that levels compare."""

    TRIVIAL = 1
    SIMPLE = 2
    MODERATE = 3
    COMPLEX = 4
    VERY_COMPLEX = 5


class ExecutionStrategy(StrEnum):
    SINGLE = "single"
    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    HIERARCHICAL = "hierarchical"
    CONSENSUS = "consensus"


Note = Annotated[str, Field(min_length=1, max_length=2000)]


class TaskDescription(Strict):
    description: str = Field(min_length=1, max_length=8192)
    context: JsonObject = Field(default_factory=dict)


class SuggestedAgent(BaseModel):
    agent_type: str
    success_rate: float
    confidence: float = Field(description="Wilson lower bound of the success rate (95%).")
    support: float = Field(description="Similar attempts behind it, decayed by age.")


class DurationEstimate(BaseModel):
    """Seconds. `basis` says where it comes from: never a constant passed off as data."""

    seconds: float
    low: float
    high: float
    basis: Literal["similar_tasks", "complexity_history", "prior"]
    samples: float = Field(description="Outcomes behind the estimate; 0 for the prior.")


class TaskAnalysis(BaseModel):
    task_id: int
    description: str
    complexity: Complexity
    complexity_name: str
    requirements: list[str]
    keywords: list[str]
    suggested_agents: list[SuggestedAgent]
    estimated_duration: DurationEstimate
    cluster_id: int | None = Field(description="The task cluster of similar past tasks, if any.")
    similar_tasks: float = Field(description="Past attempts at tasks of that cluster (decayed).")
    created_at: datetime


class SelectRequest(Strict):
    """Select for an analysed task (`task_id`) or analyse `description` first."""

    task_id: Id | None = None
    description: str | None = Field(default=None, min_length=1, max_length=8192)
    context: JsonObject = Field(default_factory=dict)
    agent_types: list[Name] | None = Field(
        default=None,
        min_length=1,
        max_length=16,
        description="Agents available; default: suggested.",
    )
    greedy: bool = Field(default=False, description="No exploration: rank by posterior mean.")


class RankedStrategy(BaseModel):
    strategy: ExecutionStrategy
    score: float = Field(description="The Thompson sample (greedy: the posterior mean).")
    expected_success: float = Field(description="Posterior mean of success.")
    low: float
    high: float
    outcomes: float = Field(description="Effective (discounted) outcomes at the finest level used.")
    level: str = Field(description="The finest context level that had outcomes for it.")


class StrategySelection(BaseModel):
    strategy_id: int
    task_id: int
    execution_strategy: ExecutionStrategy
    agent_sequence: list[str]
    confidence: float = Field(description="Lower end of the 95% credible interval of success.")
    expected_success: float
    expected_duration: DurationEstimate
    greedy: bool
    alternatives: list[RankedStrategy] = Field(description="Every strategy, best first.")
    created_at: datetime


class OutcomeReport(Strict):
    task_id: Id
    success: bool
    actual_duration: float = Field(ge=0, le=1e7)
    actual_iterations: int = Field(default=1, ge=0, le=1_000_000)
    errors_encountered: int = Field(default=0, ge=0, le=1_000_000)
    what_worked: list[Note] = Field(default_factory=list, max_length=64)
    improvements: list[Note] = Field(default_factory=list, max_length=64)


class OutcomeResult(BaseModel):
    strategy_id: int
    execution_strategy: ExecutionStrategy
    success: bool
    expected_success: float = Field(description="Posterior mean after this outcome.")
    change_detected: bool = Field(description="A shift was found and the posterior restarted.")
    interaction_id: int = Field(description="The interaction it was recorded as (learnings).")


class StrategyShare(BaseModel):
    strategy: ExecutionStrategy
    selected: int
    outcomes: int
    success_rate: float | None


class StrategyStatistics(BaseModel):
    total_tasks_analyzed: int
    strategies_selected: int
    outcomes_recorded: int
    learned_patterns: int = Field(description="(context, strategy) posteriors with outcomes.")
    task_strategy_learnings: int
    overall_success_rate: float | None
    change_points: int
    by_strategy: list[StrategyShare]
    last_outcome_at: datetime | None
