"""Trend of an agent's performance over time windows.

Executions are bucketed into windows of `window_s` seconds aligned to the epoch
(daily windows start at 00:00 UTC), looking back `max_windows` windows from the one
holding `now`; executions after `now` are left out. A window with fewer than
MIN_WINDOW_EXECUTIONS executions is too noisy to rank and is skipped. Each window
gives its success rate and p50 time.

Each of the two series is tested for a monotonic trend with the Mann-Kendall test
(Mann, Econometrica 13, 1945; Kendall, Rank Correlation Methods, 1975), with
t_g the sizes of groups of tied values:

    S = sum over i < j of sign(x_j − x_i)
    var(S) = (n(n − 1)(2n + 5) − sum_g t_g(t_g − 1)(2t_g + 5)) / 18
    z = (S − sign(S)) / sqrt(var(S))      (continuity correction),  p = erfc(|z|/sqrt 2)

    The normal approximation is conservative at small n: five windows in a strictly
    increasing order give p = 0.028 where the exact p is 0.017. Below five windows
    no order can reach p < 0.05, so MIN_WINDOWS = 5 and fewer windows give
    INSUFFICIENT_DATA.

The size of the trend is the Theil-Sen slope (Theil, 1950; Sen, JASA 63, 1968): the
median of (x_j − x_i)/(w_j − w_i) over pairs of windows i < j, with w the window's
number, so skipped windows keep their place; a slope per window.

The two p-values are Holm-adjusted (`stats.holm`) so the chance of calling a trend in
a flat history stays at α. A metric with adjusted p < α improves or degrades by the
sign of S (a rising success rate improves, a rising p50 time degrades). The overall
direction is the success rate's when it is significant, as success matters more than
speed; otherwise the time's; otherwise STABLE.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from schemas.performance import DAY_S, MonotonicTrend, Trend, TrendDirection, TrendWindow
from server.performance.executions import Execution, group_by, to_datetime
from server.performance.stats import ALPHA, holm, median, normal_two_sided_p

MIN_WINDOWS = 5
MIN_WINDOW_EXECUTIONS = 5
DEFAULT_WINDOWS = 30


@dataclass(frozen=True, slots=True)
class MannKendall:
    s: int
    z: float
    p_value: float


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def mann_kendall(series: Sequence[float]) -> MannKendall:
    """Mann-Kendall S, its continuity-corrected z and two-sided p, ties corrected."""
    n = len(series)
    s = sum(_sign(series[j] - series[i]) for i in range(n) for j in range(i + 1, n))
    ties = [series.count(value) for value in set(series)]
    var_s = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties)) / 18
    if var_s <= 0:
        return MannKendall(s, 0.0, 1.0)
    z = (s - _sign(s)) / math.sqrt(var_s)
    return MannKendall(s, z, normal_two_sided_p(z))


def theil_sen_slope(series: Sequence[float], positions: Sequence[float] | None = None) -> float:
    """Median slope over all pairs of points, at `positions` (default 0, 1, 2, ...);
    pairs at one position are skipped; 0 for fewer than two positions."""
    xs = list(range(len(series))) if positions is None else positions
    slopes = [
        (series[j] - series[i]) / (xs[j] - xs[i])
        for i in range(len(series))
        for j in range(i + 1, len(series))
        if xs[j] != xs[i]
    ]
    return median(slopes) if slopes else 0.0


def window_metrics(
    executions: Sequence[Execution], now: float, window_s: float, max_windows: int
) -> list[TrendWindow]:
    """Qualifying windows, oldest first."""
    latest = _window_index(now, window_s)
    in_range = [
        e
        for e in executions
        if latest - max_windows < _window_index(e.timestamp, window_s) <= latest
    ]
    buckets = group_by(in_range, lambda e: _window_index(e.timestamp, window_s))
    return [
        _window(index * window_s, buckets[index])
        for index in sorted(buckets)
        if len(buckets[index]) >= MIN_WINDOW_EXECUTIONS
    ]


def _window_index(epoch: float, window_s: float) -> int:
    return math.floor(epoch / window_s)


def _window(start: float, executions: Sequence[Execution]) -> TrendWindow:
    return TrendWindow(
        start=to_datetime(start),
        executions=len(executions),
        success_rate=sum(e.success for e in executions) / len(executions),
        p50_time=median([e.completion_time for e in executions]),
    )


def _metric_direction(s: int, adjusted_p: float, higher_is_better: bool) -> TrendDirection:
    if adjusted_p >= ALPHA or s == 0:
        return TrendDirection.STABLE
    rising_is_good = (s > 0) == higher_is_better
    return TrendDirection.IMPROVING if rising_is_good else TrendDirection.DEGRADING


def _monotonic(
    metric: Literal["success_rate", "p50_time"],
    series: Sequence[float],
    positions: Sequence[float],
    test: MannKendall,
    adjusted_p: float,
) -> MonotonicTrend:
    return MonotonicTrend(
        metric=metric,
        kendall_s=test.s,
        z=test.z,
        p_value=test.p_value,
        adjusted_p_value=adjusted_p,
        slope_per_window=theil_sen_slope(series, positions),
        direction=_metric_direction(test.s, adjusted_p, metric == "success_rate"),
    )


def _overall(success: MonotonicTrend, time: MonotonicTrend) -> TrendDirection:
    if success.direction is not TrendDirection.STABLE:
        return success.direction
    return time.direction


def trend(
    executions: Sequence[Execution],
    now: float,
    window_s: float = DAY_S,
    max_windows: int = DEFAULT_WINDOWS,
) -> Trend:
    """The trend of `executions` (one agent's) over the windows up to `now`."""
    if window_s <= 0 or max_windows < 1:
        raise ValueError("window_s must be > 0 and max_windows >= 1")
    windows = window_metrics(executions, now, window_s, max_windows)
    tests = _tests(windows, window_s) if len(windows) >= MIN_WINDOWS else None
    return Trend(
        direction=_overall(*tests) if tests else TrendDirection.INSUFFICIENT_DATA,
        window_s=window_s,
        min_windows=MIN_WINDOWS,
        min_window_executions=MIN_WINDOW_EXECUTIONS,
        windows=windows,
        success_rate=tests[0] if tests else None,
        p50_time=tests[1] if tests else None,
    )


def _tests(
    windows: Sequence[TrendWindow], window_s: float
) -> tuple[MonotonicTrend, MonotonicTrend]:
    rates = [w.success_rate for w in windows]
    times = [w.p50_time for w in windows]
    positions = [(w.start - windows[0].start).total_seconds() / window_s for w in windows]
    success, time = mann_kendall(rates), mann_kendall(times)
    success_p, time_p = holm([success.p_value, time.p_value])
    return (
        _monotonic("success_rate", rates, positions, success, success_p),
        _monotonic("p50_time", times, positions, time, time_p),
    )
