"""Is run B slower than run A? Decided from both runs' step-time samples, not from two means.

A verdict needs two things at once: the difference must be real (a rank test on the samples says the two
distributions differ, p below `alpha`) and it must matter (the medians differ by more than `threshold`). The steps of
one run are not independent draws (clocks drift with temperature, a neighbour's job comes and goes), so p-values are
optimistic; the threshold on the effect size is what keeps such drift from being called a regression. Runs whose
step times scatter widely get the verdict "noisy" when no such difference shows: they could hide a change of that size.

No scipy: the normal approximation of the Mann-Whitney U test is a few lines, and it is what
`scipy.stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)` computes. When a result carries only a
summary (mean, standard deviation, count), Welch's t-test on the summaries stands in for the rank test. A difference
beyond the threshold that the test cannot confirm (too few steps) is "noisy", never "same".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

# Verdicts, from the point of view of the second run against the first (the baseline).
SAME, BETTER, REGRESSION, NOISY = "same", "better", "regression", "noisy"

DEFAULT_ALPHA = 0.01  # two-sided; strict, because a step-time series has many samples and a CI gate must not flap
DEFAULT_THRESHOLD = 0.05  # relative change in median step time that counts: pytest-benchmark's `mean:5%` habit
DEFAULT_NOISE = 0.10  # relative IQR (IQR / median) above which a run is too scattered to call "same"
NORMAL_IQR_PER_STDEV = 2 * 0.6744897501960817  # 2 * the standard normal's 75th percentile, scipy.stats.norm.ppf(0.75)
MIN_SAMPLES = 5  # below this the normal approximation is meaningless; even at 5 a side it cannot reach p < 0.012


@dataclass
class Summary:
    """What a result says about its step times: the samples when it kept them, the moments otherwise."""

    count: int
    mean: float
    median: float
    stdev: float
    q1: float | None = None
    q3: float | None = None
    samples: list[float] | None = field(default=None, repr=False)

    @classmethod
    def of_samples(cls, samples: list[float]) -> "Summary":
        ordered = sorted(float(s) for s in samples)
        if len(ordered) > 1:
            # linear interpolation between order statistics: numpy's default and dlbench's step percentiles
            q1, median, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            q1 = median = q3 = ordered[0]
        return cls(
            count=len(ordered),
            mean=statistics.fmean(ordered),
            median=median,
            stdev=statistics.stdev(ordered) if len(ordered) > 1 else 0.0,
            q1=q1,
            q3=q3,
            samples=ordered,
        )

    @property
    def relative_spread(self) -> float:
        """IQR over median where quartiles are known (robust to the odd slow step), else the IQR the deviation
        implies over the mean: a normal distribution's IQR is 1.349 standard deviations, so that `--noise` means the
        same thing for a result that kept only its mean and deviation."""
        if self.q1 is not None and self.q3 is not None and self.median > 0:
            return (self.q3 - self.q1) / self.median
        return NORMAL_IQR_PER_STDEV * self.stdev / self.mean if self.mean > 0 else 0.0


def _two_sided_normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def mann_whitney_u(x: list[float], y: list[float]) -> tuple[float, float]:
    """(U of x, two-sided p) by the normal approximation with tie and continuity corrections.

    U_x = R_x - n_x(n_x+1)/2 with R_x the sum of x's mid-ranks in the pooled sample; under H0 U has mean n_x n_y / 2
    and variance n_x n_y / 12 * ((n+1) - sum(t^3 - t) / (n(n-1))) over tie groups of size t (Mann & Whitney 1947;
    tie correction as in Lehmann, "Nonparametrics", 1975, and scipy.stats.mannwhitneyu's asymptotic method).
    """
    n_x, n_y = len(x), len(y)
    n = n_x + n_y
    pooled = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    rank_sum_x, tie_term, i = 0.0, 0.0, 0
    while i < n:
        j = i
        while j + 1 < n and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mid_rank = (i + j) / 2.0 + 1.0  # ranks are 1-based; tied values share the mean of their ranks
        rank_sum_x += mid_rank * sum(1 for k in range(i, j + 1) if pooled[k][1] == 0)
        t = j - i + 1
        tie_term += t**3 - t
        i = j + 1
    u_x = rank_sum_x - n_x * (n_x + 1) / 2.0
    mean_u = n_x * n_y / 2.0
    variance = n_x * n_y / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:  # every value equal: no evidence of any difference
        return u_x, 1.0
    # continuity correction: move half a unit towards the mean (what use_continuity=True does)
    z = (abs(u_x - mean_u) - 0.5) / math.sqrt(variance)
    return u_x, _two_sided_normal_p(max(z, 0.0))


def _regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by its continued fraction, evaluated with the modified Lentz method (Numerical Recipes, 3rd ed.,
    section 6.4, `betai`/`betacf`): what scipy.special.betainc computes, to about 1e-12 here."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the fraction converges fast only below the mean; use the symmetry
        return 1.0 - _regularized_incomplete_beta(1.0 - x, b, a)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 10_000):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return math.exp(log_front) * fraction / a


def _two_sided_t_p(t: float, df: float) -> float:
    """Two-sided tail of Student's t with `df` degrees of freedom (df need not be whole): I_{df/(df+t^2)}(df/2, 1/2)."""
    return _regularized_incomplete_beta(df / (df + t * t), df / 2.0, 0.5)


def welch_t(a: Summary, b: Summary) -> float:
    """Two-sided p of Welch's t-test from summaries: t = (mean_b - mean_a) / sqrt(s_a^2/n_a + s_b^2/n_b) against
    Student's t with the Welch-Satterthwaite degrees of freedom (Welch 1947; what scipy.stats.ttest_ind_from_stats
    with equal_var=False computes). Not a normal tail: at the 5 to 20 rounds a slow benchmark keeps, the normal tail
    makes p several times too small and calls regressions the data do not show."""
    var_a, var_b = a.stdev**2 / a.count, b.stdev**2 / b.count
    error = math.sqrt(var_a + var_b)
    if error == 0:
        return 1.0 if a.mean == b.mean else 0.0
    df = (var_a + var_b) ** 2 / (var_a**2 / (a.count - 1) + var_b**2 / (b.count - 1))
    return _two_sided_t_p((b.mean - a.mean) / error, df)


@dataclass
class Decision:
    verdict: str
    method: str  # "mann-whitney-u" (on samples) or "welch-t-summary" (on mean, stdev and count)
    p_value: float
    change: float  # b's step time over a's, minus 1 (+0.10 is 10 % slower): of the medians, or the means for Welch
    statistic: str  # "median" or "mean": what `change` compares
    spread_a: float
    spread_b: float
    count_a: int
    count_b: int
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


class TooFewSamples(ValueError):
    pass


def decide(
    a: Summary,
    b: Summary,
    alpha: float = DEFAULT_ALPHA,
    threshold: float = DEFAULT_THRESHOLD,
    noise: float = DEFAULT_NOISE,
) -> Decision:
    """The verdict on B (candidate) against A (baseline); times, so lower is better."""
    if a.count < MIN_SAMPLES or b.count < MIN_SAMPLES:
        raise TooFewSamples(
            f"too few step-time samples to test ({a.count} and {b.count}; at least {MIN_SAMPLES} "
            "each): run more steps"
        )
    if a.samples is not None and b.samples is not None:
        method, (_, p) = "mann-whitney-u", mann_whitney_u(a.samples, b.samples)
        statistic, change = "median", b.median / a.median - 1.0
    else:
        # without samples the median may be absent or an estimate; the test is on means, so is the effect
        method, p = "welch-t-summary", welch_t(a, b)
        statistic, change = "mean", b.mean / a.mean - 1.0
    spread_a, spread_b = a.relative_spread, b.relative_spread
    significant = p < alpha
    if significant and change >= threshold:
        verdict, reason = REGRESSION, f"{change:+.1%} {statistic} step time, p={p:.2g}"
    elif significant and change <= -threshold:
        verdict, reason = BETTER, f"{change:+.1%} {statistic} step time, p={p:.2g}"
    elif max(spread_a, spread_b) > noise:
        verdict = NOISY
        reason = (
            f"step times scatter by {max(spread_a, spread_b):.0%} (IQR/median; limit {noise:.0%}): "
            f"a change of {threshold:.0%} could hide in it"
        )
    elif not significant and abs(change) >= threshold:
        # absence of evidence is not "same": the samples moved by more than the threshold, but too few of them to
        # tell (at 5 steps a side the rank test's smallest p is 0.012, above the default alpha)
        verdict = NOISY
        reason = (
            f"{change:+.1%} {statistic} step time, but not significant (p={p:.2g}, {a.count} and {b.count} "
            "steps): too few steps to tell, run more"
        )
    else:
        verdict = SAME
        reason = (
            f"{change:+.1%} {statistic} step time is within {threshold:.0%}"
            if significant
            else f"no significant difference (p={p:.2g}, {change:+.1%})"
        )
    return Decision(verdict, method, p, change, statistic, spread_a, spread_b, a.count, b.count, reason)
