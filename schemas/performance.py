"""Performance Optimizer: executions, agent performance and its trend,
bottlenecks, recommendations and agent comparisons.

Formulas and thresholds live with the code that computes them (`server/performance`);
these models only carry the results. Rates are fractions in [0, 1], times seconds.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, Discriminator, Field, Tag, model_validator

from schemas.common import Name, Strict, Timestamp
from schemas.hub import Priority as Priority  # re-exported: the same four levels
from schemas.interactions import JsonObject

ErrorText = Annotated[str, Field(min_length=1, max_length=512)]
"""An error an execution met, e.g. an exception type or message."""

DAY_S = 86_400


class RecommendationType(StrEnum):
    EXECUTION_SPEED = "EXECUTION_SPEED"
    ITERATION_REDUCTION = "ITERATION_REDUCTION"
    ERROR_REDUCTION = "ERROR_REDUCTION"
    RESOURCE_EFFICIENCY = "RESOURCE_EFFICIENCY"
    AGENT_SELECTION = "AGENT_SELECTION"
    PARALLEL_EXECUTION = "PARALLEL_EXECUTION"
    CACHING = "CACHING"


class TrendDirection(StrEnum):
    IMPROVING = "IMPROVING"
    STABLE = "STABLE"
    DEGRADING = "DEGRADING"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class BottleneckKind(StrEnum):
    SLOW_CATEGORY = "SLOW_CATEGORY"
    """A category far slower than the agent's other categories."""
    HIGH_ITERATIONS = "HIGH_ITERATIONS"
    """A category needing far more iterations than the agent's other categories."""
    ERROR_HOTSPOT = "ERROR_HOTSPOT"
    """A category failing significantly more often than the agent's other categories."""
    RECURRING_ERROR = "RECURRING_ERROR"
    """One error behind a large share of the agent's failures."""
    PEER_GAP = "PEER_GAP"
    """A category where the agent is significantly slower than the fastest peer."""
    LONG_TAIL = "LONG_TAIL"
    """A category whose slowest runs take many times the median."""


class Verdict(StrEnum):
    A_BETTER = "A_BETTER"
    B_BETTER = "B_BETTER"
    NO_SIGNIFICANT_DIFFERENCE = "NO_SIGNIFICANT_DIFFERENCE"


class ExecutionRecord(Strict):
    """`POST /executions`: one execution of a task by an agent."""

    agent_type: Name
    task_category: Name
    completion_time: float = Field(
        ge=0, le=1e7, allow_inf_nan=False, description="Seconds the execution took."
    )
    iterations: int = Field(ge=0, le=1_000_000)
    success: bool
    errors: list[ErrorText] = Field(default_factory=list, max_length=64)
    actions_count: int = Field(ge=0, le=1_000_000)
    timestamp: Timestamp | None = Field(
        default=None,
        strict=False,
        description="When the execution ended (ISO 8601, UTC if naive); now if absent.",
    )
    metadata: JsonObject = Field(default_factory=dict)


class ExecutionBatch(Strict):
    executions: list[ExecutionRecord] = Field(min_length=1, max_length=1000)


def _execution_kind(value: Any) -> str:
    if isinstance(value, dict) and "executions" in value:
        return "batch"
    return "one"


ExecutionRequest = Annotated[
    Annotated[ExecutionRecord, Tag("one")] | Annotated[ExecutionBatch, Tag("batch")],
    Discriminator(_execution_kind),
]
"""`POST /executions` takes one execution or `{"executions": [...]}`."""


class PerformanceQuery(Strict):
    """Query string of `GET /performance/agents/{agent}`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    window_s: int = Field(default=DAY_S, ge=60, le=90 * DAY_S, description="Trend window width.")
    windows: int = Field(default=30, ge=2, le=366, description="Trend windows looked back.")


class RecommendationsQuery(Strict):
    """Query string of `GET /recommendations`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    agent_type: Name | None = None
    min_priority: Priority = Priority.LOW


class CompareQuery(Strict):
    """Query string of `GET /performance/compare`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    a: Name
    b: Name

    @model_validator(mode="after")
    def _two_agents(self) -> Self:
        if self.a == self.b:
            raise ValueError("a and b must be different agent types")
        return self


class MetricSummary(BaseModel):
    executions: int
    successes: int
    success_rate: float
    success_rate_low: float = Field(description="Wilson 95% interval, lower end.")
    success_rate_high: float = Field(description="Wilson 95% interval, upper end.")
    mean_time: float
    p50_time: float
    p95_time: float
    mean_iterations: float
    p50_iterations: float
    p95_iterations: float
    mean_actions: float
    error_rate: float = Field(description="Share of executions that met at least one error.")


class CategoryPerformance(MetricSummary):
    task_category: str


class AgentSummary(MetricSummary):
    agent_type: str


class ErrorCount(BaseModel):
    error: str
    executions: int = Field(description="Executions that met the error.")
    failures: int = Field(description="Of those, the failed ones.")
    share_of_failures: float = Field(description="failures / all failed executions.")


class TrendWindow(BaseModel):
    start: datetime
    executions: int
    success_rate: float
    p50_time: float


class MonotonicTrend(BaseModel):
    """Mann-Kendall test and Theil-Sen slope of one metric over the windows."""

    metric: Literal["success_rate", "p50_time"]
    kendall_s: int
    z: float
    p_value: float
    adjusted_p_value: float = Field(description="Holm over the two metrics.")
    slope_per_window: float = Field(description="Theil-Sen: median of pairwise slopes.")
    direction: TrendDirection


class Trend(BaseModel):
    direction: TrendDirection
    window_s: float
    min_windows: int = Field(description="Fewer qualifying windows give INSUFFICIENT_DATA.")
    min_window_executions: int = Field(description="Windows with fewer executions are left out.")
    windows: list[TrendWindow] = Field(description="Qualifying windows, oldest first.")
    success_rate: MonotonicTrend | None = None
    p50_time: MonotonicTrend | None = None


BottleneckMetric = Literal[
    "p50_time", "p95_time", "mean_iterations", "failure_rate", "share_of_failures"
]


class Bottleneck(BaseModel):
    kind: BottleneckKind
    agent_type: str
    task_category: str | None
    metric: BottleneckMetric
    value: float
    baseline: float = Field(description="What `value` is compared with; see `detail`.")
    severity: Priority
    score: float = Field(description="effect × evidence weight, in [0, 1].")
    evidence: int = Field(description="Executions behind `value`.")
    p_value: float | None = Field(
        description="Benjamini-Hochberg q-value over the call's tests, where a test decides."
    )
    detail: str


ImprovementMetric = Literal[
    "p50_time",
    "mean_time",
    "mean_iterations",
    "success_rate",
    "actions_per_success",
    "chain_makespan",
]


ImprovementUnit = Literal["seconds", "iterations", "fraction", "actions"]


class ExpectedImprovement(BaseModel):
    """What the data says the change would bring, in the metric's own unit."""

    metric: ImprovementMetric
    unit: ImprovementUnit
    current: float
    expected: float
    change: float = Field(description="expected − current.")
    relative_gain: float = Field(
        description="Share of the loss removed: 1 − expected/current for costs, "
        "(expected − current)/(1 − current) for success rate."
    )


StatisticalTest = Literal[
    "welch_t_log",
    "two_proportion_z",
    "fisher_exact",
    "ratio_z_log",
    "threshold",
]


class StatisticalBasis(BaseModel):
    test: StatisticalTest
    statistic: float | None = None
    p_value: float | None = None
    adjusted_p_value: float | None = Field(
        default=None, description="Benjamini-Hochberg q-value over every test of the call."
    )
    family_size: int | None = Field(default=None, description="Tests the call made.")
    alpha: float
    note: str


class Recommendation(BaseModel):
    type: RecommendationType
    priority: Priority
    score: float = Field(description="effect × evidence weight, in [0, 1].")
    agent_type: str
    task_category: str | None = None
    title: str
    rationale: str
    expected_improvement: ExpectedImprovement
    evidence: int = Field(description="Executions of the agent (and category) concerned.")
    peer_agent_type: str | None = None
    peer_evidence: int | None = None
    basis: StatisticalBasis


class AgentPerformance(MetricSummary):
    agent_type: str
    first_at: datetime
    last_at: datetime
    top_errors: list[ErrorCount]
    trend: Trend
    categories: list[CategoryPerformance]
    bottlenecks: list[Bottleneck]


class MetricComparison(BaseModel):
    metric: Literal["success_rate", "completion_time", "iterations"]
    a: float = Field(description="success_rate, or the p50 of time or iterations.")
    b: float
    difference: float = Field(description="a − b.")
    effect_size: float | None = Field(description="None when infinite (constant samples).")
    effect_size_kind: Literal["cohens_h", "hedges_g_log"]
    test: StatisticalTest
    statistic: float | None = None
    df: float | None = None
    p_value: float | None = Field(description="None when a sample is too small to test.")
    adjusted_p_value: float | None = Field(
        default=None, description="Holm over success_rate and completion_time."
    )
    better: Literal["a", "b"] | None = Field(description="Significantly better one, if any.")


class AgentComparison(BaseModel):
    a: AgentSummary
    b: AgentSummary
    alpha: float
    success_rate: MetricComparison
    completion_time: MetricComparison
    iterations: MetricComparison
    verdict: Verdict
    reason: str
    shared_categories: list[str] = Field(
        description="Categories both agents ran; a mix of different categories can "
        "explain a difference on its own."
    )


class PerformanceStats(BaseModel):
    executions: int
    agent_types: int
    task_categories: int
    success_rate: float | None
    first_at: datetime | None
    last_at: datetime | None


class Recommendations(BaseModel):
    items: list[Recommendation] = Field(description="Highest priority first.")


class Bottlenecks(BaseModel):
    items: list[Bottleneck]


class BottlenecksQuery(Strict):
    """Query string of `GET /performance/bottlenecks`; lax because it arrives as text."""

    model_config = Strict.model_config | {"strict": False}

    agent_type: Name | None = None
