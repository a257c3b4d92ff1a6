"""Is run B slower than run A? Decided from step-time samples, or from several runs a side, not from two means.

A verdict needs three things: the runs can be trusted (no contention flag, a settled warm-up, a window long enough:
the caller names what is wrong), they do not scatter more than the change being looked for, and then a statistic
differs in a way that is both real (its test gives p below `alpha`) and large (beyond `threshold`). Three statistics
are judged: the throughput (total over total), the mean and the median step time; a slow tail moves the first two and
leaves the median alone. The steps of one run are not independent draws (clocks drift with temperature, a neighbour's
job comes and goes), so their p-values are optimistic; several runs a side, each one value, are what measures the
variation between runs.

No scipy: the normal approximation of the Mann-Whitney U test is a few lines, and it is what
`scipy.stats.mannwhitneyu(x, y, method="asymptotic", use_continuity=True)` computes; the t-tests use Student's t
through the regularized incomplete beta function (`scipy.stats.ttest_ind_from_stats`). A difference beyond the
threshold that a test cannot confirm (too few steps or runs) is "noisy", never "same".
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field

# Verdicts, from the point of view of the second run against the first (the baseline).
SAME, BETTER, REGRESSION, NOISY = "same", "better", "regression", "noisy"

DEFAULT_ALPHA = 0.01  # two-sided; strict, because a step-time series has many samples and a CI gate must not flap
DEFAULT_THRESHOLD = 0.05  # relative change (throughput, mean, median) that counts: pytest-benchmark's `mean:5%` habit
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
    # independent values the `count` samples are worth: fewer where consecutive steps move together (a clock that
    # drifts, a neighbour that comes and goes), so that the tests do not count one slow minute as many proofs
    independent: float | None = None

    @classmethod
    def of_samples(cls, samples: list[float]) -> "Summary":
        """`samples` in the order measured: their order is what tells how much consecutive steps move together."""
        measured = [float(s) for s in samples]
        ordered = sorted(measured)
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
            independent=effective_count(measured),
        )

    @property
    def effective(self) -> float:
        return self.count if self.independent is None else self.independent

    @property
    def relative_spread(self) -> float:
        """IQR over median where quartiles are known (robust to the odd slow step), else the IQR the deviation
        implies over the mean: a normal distribution's IQR is 1.349 standard deviations, so that `--noise` means the
        same thing for a result that kept only its mean and deviation."""
        if self.q1 is not None and self.q3 is not None and self.median > 0:
            return (self.q3 - self.q1) / self.median
        return NORMAL_IQR_PER_STDEV * self.stdev / self.mean if self.mean > 0 else 0.0


def lag1_autocorrelation(series: list[float]) -> float:
    """The correlation of each value with the next (the usual estimator, deviations from the series' mean)."""
    if len(series) < 3:
        return 0.0
    mean = statistics.fmean(series)
    deviations = [v - mean for v in series]
    variance = sum(d * d for d in deviations)
    if variance == 0:
        return 0.0
    return sum(x * y for x, y in zip(deviations, deviations[1:])) / variance


def effective_count(series: list[float]) -> float:
    """How many independent values a serially correlated series is worth for a test of its mean:
    n' = n (1 - r1) / (1 + r1) with r1 the lag-1 autocorrelation (the AR(1) variance inflation: Wilks, "Statistical
    Methods in the Atmospheric Sciences", 3rd ed., eq. 5.12; Zwiers and von Storch, J. Climate 8, 1995). Step times
    are such a series: 300 steps of a GPU whose clock drifts with its temperature are worth a handful of draws, and
    testing them as 300 calls regressions that are the drift. Negative r1 (alternating steps) is not credited: n.
    At least 2, so that a variance still has one degree of freedom."""
    n = len(series)
    r1 = lag1_autocorrelation(series)
    if r1 <= 0:
        return float(n)
    return max(2.0, min(float(n), n * (1.0 - r1) / (1.0 + r1)))


def _two_sided_normal_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2.0))


def mann_whitney_u(
    x: list[float], y: list[float], effective_x: float | None = None, effective_y: float | None = None
) -> tuple[float, float]:
    """(U of x, two-sided p) by the normal approximation with tie and continuity corrections.

    `effective_x`/`effective_y`: the independent values each sample is worth (`effective_count`), where fewer than
    its length. U / (n_x n_y) estimates P(X < Y) with a variance of (n_x + n_y + 1) / (12 n_x n_y) under H0; serially
    correlated samples carry the information of n'_x and n'_y draws, so the variance grows by that expression's
    ratio at n' and at n (the same inflation as the t-test's; without it 300 drifting steps a side are 300 proofs).

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
    e_x, e_y = min(effective_x or n_x, n_x), min(effective_y or n_y, n_y)
    variance *= ((e_x + e_y + 1) / (e_x * e_y)) / ((n + 1) / (n_x * n_y))
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
    makes p several times too small and calls regressions the data do not show. Each side counts the independent
    values its samples are worth (`Summary.effective`), not its length."""
    n_a, n_b = a.effective, b.effective
    var_a, var_b = a.stdev**2 / n_a, b.stdev**2 / n_b
    error = math.sqrt(var_a + var_b)
    if error == 0:
        return 1.0 if a.mean == b.mean else 0.0
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    return _two_sided_t_p((b.mean - a.mean) / error, df)


def pooled_t(a: Summary, b: Summary) -> float:
    """Two-sided p of Student's t-test with a pooled variance (what scipy.stats.ttest_ind_from_stats with
    equal_var=True computes). Used where one side is a single run: it has no spread of its own, so the other side's
    run-to-run spread stands for both (equal variances assumed), with n_a + n_b - 2 degrees of freedom."""
    df = a.count + b.count - 2
    if df < 1:
        raise TooFewSamples("a t-test needs three values in all")
    pooled = ((a.count - 1) * a.stdev**2 + (b.count - 1) * b.stdev**2) / df
    error = math.sqrt(pooled * (1.0 / a.count + 1.0 / b.count))
    if error == 0:
        return 1.0 if a.mean == b.mean else 0.0
    return _two_sided_t_p((b.mean - a.mean) / error, df)


class TooFewSamples(ValueError):
    pass


@dataclass(frozen=True)
class Limits:
    """What a verdict needs: p below `alpha`, a change of at least `threshold`, spread at most `noise`."""

    alpha: float = DEFAULT_ALPHA
    threshold: float = DEFAULT_THRESHOLD
    noise: float = DEFAULT_NOISE


@dataclass
class Finding:
    """One statistic on both sides and the test of its difference."""

    statistic: str  # "throughput", "mean step time", "median step time"
    unit: str
    baseline: float
    candidate: float
    p_value: float
    test: str  # "mann-whitney-u", "welch-t", "student-t-pooled"
    higher_is_better: bool = False
    # the test this finding's p comes from, where another finding shares it (throughput and mean step time are one
    # Welch test on one run a side): shared tests count once when p-values are adjusted for their number
    tested: str = ""
    p_raw: float | None = None  # the test's own p, before the adjustment for the number of tests (Holm)

    @property
    def change(self) -> float:
        return self.candidate / self.baseline - 1.0 if self.baseline else 0.0

    @property
    def loss(self) -> float:
        """How much worse the candidate is, as a fraction of the baseline: positive is worse, whatever the sign of
        a better value (throughput up, step time down)."""
        return -self.change if self.higher_is_better else self.change

    def text(self) -> str:
        return f"{self.statistic} {self.change:+.1%} (p={self.p_value:.2g})"

    def as_dict(self) -> dict:
        return {**asdict(self), "change": self.change}


@dataclass
class Decision:
    verdict: str
    level: str  # "steps": one run a side, judged on its step times; "runs": several a side, on run-to-run variation
    findings: list[Finding]
    # the finding the verdict rests on: the first worse (or better) beyond the threshold, else the one that moved
    # most; findings come throughput first, the figure a user gates on
    headline: Finding
    spread_a: float
    spread_b: float
    count_a: int  # steps (level "steps") or runs (level "runs") on each side
    count_b: int
    reason: str
    suspects: list[str] = field(default_factory=list)  # why a run cannot be trusted, each naming the run

    def finding(self, statistic: str) -> Finding | None:
        return next((f for f in self.findings if f.statistic == statistic), None)

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "level": self.level,
            "statistic": self.headline.statistic,
            "change": self.headline.change,
            "p_value": self.headline.p_value,
            "method": self.headline.test,
            "spread_a": self.spread_a,
            "spread_b": self.spread_b,
            "count_a": self.count_a,
            "count_b": self.count_b,
            "reason": self.reason,
            "suspects": self.suspects,
            "findings": [f.as_dict() for f in self.findings],
        }


def holm_adjust(findings: list[Finding]) -> None:
    """Replace each finding's p by its Holm-adjusted p (Holm, Scand. J. Statist. 6, 1979): with m distinct tests
    sorted by p, the i-th smallest becomes max over j <= i of min(1, (m - j + 1) p_(j)). A verdict of "regression"
    when any of the throughput, mean and median tests passes alpha on its own is a family of tests whose chance of a
    false alarm is up to m x alpha; compared with alpha after the adjustment, it is at most alpha (Holm's procedure
    holds the family-wise error rate whatever the tests' dependence, and rejects at least as much as Bonferroni)."""
    raw: dict[str, float] = {}
    for finding in findings:
        raw.setdefault(finding.tested or finding.statistic, finding.p_value if finding.p_raw is None else finding.p_raw)
    order = sorted(raw, key=raw.get)
    adjusted, running = {}, 0.0
    for index, key in enumerate(order):
        running = max(running, min(1.0, (len(order) - index) * raw[key]))
        adjusted[key] = running
    for finding in findings:
        key = finding.tested or finding.statistic
        finding.p_raw, finding.p_value = raw[key], adjusted[key]


def _judge(
    findings: list[Finding],
    level: str,
    spreads: tuple[float, float],
    counts: tuple[int, int],
    scatter: str,
    suspects: list[str],
    limits: Limits,
    worth: tuple[float, float] | None = None,
) -> Decision:
    """Noise first, then significance: a verdict on runs that cannot be trusted, or that scatter more than the change
    to be found, is `noisy` whatever a test says (two contended runs of the same code differed by +81 % and +171 %
    with p < 1e-8). Then any statistic significantly worse beyond the threshold is a regression, so a slow tail
    that leaves the median alone still counts through the mean and the throughput."""
    alpha, threshold, noise = limits.alpha, limits.threshold, limits.noise
    holm_adjust(findings)
    observed = ", ".join(f.text() for f in findings)
    noise_reasons = list(suspects)
    if max(spreads) > noise:
        noise_reasons.append(
            f"{scatter} scatter by {max(spreads):.0%} (limit {noise:.0%}): a change of {threshold:.0%} could hide in it"
        )
    worse = [f for f in findings if f.p_value < alpha and f.loss >= threshold]
    gains = [f for f in findings if f.p_value < alpha and f.loss <= -threshold]
    unconfirmed = [f for f in findings if f.p_value >= alpha and abs(f.loss) >= threshold]
    headline = (worse or gains or unconfirmed or sorted(findings, key=lambda f: -abs(f.loss)))[0]
    if noise_reasons:
        verdict, reason = NOISY, f"{'; '.join(noise_reasons)} (seen: {observed})"
    elif worse:
        verdict, reason = REGRESSION, ", ".join(f.text() for f in worse)
    elif gains:
        verdict, reason = BETTER, ", ".join(f.text() for f in gains)
    elif unconfirmed:
        # absence of evidence is not "same": a statistic moved beyond the threshold, but too few values to tell (at 5
        # steps a side the rank test's smallest p is 0.012, above the default alpha)
        what = "steps" if level == "steps" else "runs"
        verdict = NOISY
        correlated = ""
        if worth and (worth[0] < counts[0] or worth[1] < counts[1]):
            correlated = (
                f", worth about {worth[0]:.0f} and {worth[1]:.0f} independent values: consecutive steps move together"
            )
        reason = (
            f"{', '.join(f.text() for f in unconfirmed)}: beyond {threshold:.0%} but not significant "
            f"({counts[0]} and {counts[1]} {what}{correlated}): too few {what} to tell, run more"
        )
    else:
        verdict, reason = SAME, f"{observed}: within {threshold:.0%}"
    return Decision(verdict, level, findings, headline, spreads[0], spreads[1], counts[0], counts[1], reason, suspects)


def decide(
    a: Summary,
    b: Summary,
    rate_a: float | None = None,
    rate_b: float | None = None,
    rate_unit: str = "steps/s",
    limits: Limits = Limits(),
    suspects: list[str] = (),
) -> Decision:
    """One run a side: B (candidate) against A (baseline) from their step times.

    Three statistics: the throughput (total samples over total time, `rate_a`/`rate_b`; without them one over the
    mean step time, pytest-benchmark's OPS), the mean step time (the same information as a time: its Welch test is
    the throughput's), and the median step time (rank test, where both runs kept their samples)."""
    if a.count < MIN_SAMPLES or b.count < MIN_SAMPLES:
        raise TooFewSamples(
            f"too few step-time samples to test ({a.count} and {b.count}; at least {MIN_SAMPLES} each): run more steps"
        )
    p_mean = welch_t(a, b)
    if rate_a is None or rate_b is None:
        rate_a, rate_b, rate_unit = 1.0 / a.mean, 1.0 / b.mean, "steps/s"
    findings = [
        Finding(
            "throughput", rate_unit, rate_a, rate_b, p_mean, "welch-t", higher_is_better=True, tested="mean step time"
        ),
        Finding("mean step time", "s", a.mean, b.mean, p_mean, "welch-t", tested="mean step time"),
    ]
    if a.samples is not None and b.samples is not None:
        p_median = mann_whitney_u(a.samples, b.samples, a.effective, b.effective)[1]
        findings.append(Finding("median step time", "s", a.median, b.median, p_median, "mann-whitney-u"))
    return _judge(
        findings,
        "steps",
        (a.relative_spread, b.relative_spread),
        (a.count, b.count),
        "step times (IQR/median)",
        list(suspects),
        limits,
        (a.effective, b.effective),
    )


def decide_runs(
    rates_a: list[float],
    rates_b: list[float],
    medians_a: list[float] | None = None,
    medians_b: list[float] | None = None,
    rate_unit: str = "samples/s",
    limits: Limits = Limits(),
    suspects: list[str] = (),
    pooled: tuple[float, float] | None = None,
) -> Decision:
    """Several runs a side: each run is one value, as each round is one value in pytest-benchmark, so the test sees
    the run-to-run variation (a new process, a new allocation, another GPU clock) that the steps of one run hide.
    Throughput per run and median step time per run are tested across runs with Welch's t, or Student's pooled t
    where one side has a single run. `pooled`: each side's throughput as total samples over total seconds, shown and
    held against the threshold in place of the mean of the runs' rates (the test stays on the per-run rates)."""
    if len(rates_a) + len(rates_b) < 3 or not rates_a or not rates_b:
        raise TooFewSamples("too few runs to test run-to-run variation (at least three in all, one a side)")
    test = welch_t if min(len(rates_a), len(rates_b)) > 1 else pooled_t
    name = "welch-t" if test is welch_t else "student-t-pooled"

    def summary(values: list[float]) -> Summary:
        return Summary(
            len(values),
            statistics.fmean(values),
            statistics.median(values),
            statistics.stdev(values) if len(values) > 1 else 0.0,
        )

    rate_sa, rate_sb = summary(rates_a), summary(rates_b)
    shown_a, shown_b = pooled or (rate_sa.mean, rate_sb.mean)
    findings = [Finding("throughput", rate_unit, shown_a, shown_b, test(rate_sa, rate_sb), name, True)]
    if medians_a and medians_b and len(medians_a) == len(rates_a) and len(medians_b) == len(rates_b):
        med_a, med_b = summary(medians_a), summary(medians_b)
        findings.append(Finding("median step time", "s", med_a.mean, med_b.mean, test(med_a, med_b), name))
    return _judge(
        findings,
        "runs",
        (rate_sa.relative_spread, rate_sb.relative_spread),
        (len(rates_a), len(rates_b)),
        "run throughputs (1.349 x standard deviation / mean)",
        list(suspects),
        limits,
    )
