"""Two-sample statistics for comparing per-interval series of two recordings (pure functions over arrays).

Method (docs/viewer.md, "How compare decides"):
- Per-interval samples of one series are autocorrelated, so their plain
  count overstates the evidence.  Each side's *effective sample size* is
  ``n / (1 + 2 * sum(rho_k))``, the autocorrelations summed with Geyer's
  initial positive sequence (pairs ``rho_2m + rho_2m+1`` are added while
  positive), or from the lag-1 autocorrelation with Kendall's small-sample
  bias correction when that gives fewer (short recordings), clamped to ``[2, n]``.
- The difference of means is tested with Welch's t-test on those effective
  sizes (variance of a mean = ``s**2 / n_eff``, Welch-Satterthwaite degrees
  of freedom); the two-sided p-value comes from Student's t distribution.
- Rates and latencies are tested on a log scale (``log(v + c)``, ``c`` one
  percent of the larger mean so idle zeros stay finite): their noise is
  multiplicative, and a load that multiplies a rate should count as much
  at 1k/s as at 1M/s.  Gauges are tested as they are.
- Multiple comparisons: Benjamini-Hochberg over every test of one run controls
  the false discovery rate at ``q``.
- A change is *significant* only when it is also large in practice: its
  standardized effect (difference over the root mean square of the two
  sides' standard deviations) is at least ``min_effect`` and the relative
  change at least ``min_relative``.  Constant sides that differ have an
  infinite effect.
Invariants: identical inputs give p = 1 and are never significant; NaN
samples (null intervals) are dropped before anything is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray

FDR_Q = 0.01
MIN_EFFECT = 0.8
MIN_RELATIVE = 0.10
MIN_SAMPLES = 3
MAX_LAG1 = 0.98
LOG_FLOOR = 0.01
_CF_ITERATIONS = 300
_CF_EPS = 1e-14
_TINY = 1e-300


@dataclass(frozen=True)
class Test:
    """The outcome of one two-sample comparison."""

    base_mean: float
    target_mean: float
    base_n: int
    target_n: int
    base_ess: float
    target_ess: float
    effect: float
    p_value: float


def effective_size(x: NDArray[np.float64]) -> float:
    """Effective sample size of an autocorrelated series: the smaller of two estimates.

    Geyer's initial positive sequence sums every lag but is biased low on
    short series; the AR(1) estimate with Kendall's bias correction of the
    lag-1 autocorrelation covers that case.
    """
    n = len(x)
    if n < MIN_SAMPLES:
        return float(n)
    centred = x - x.mean()
    var = float(centred @ centred)
    if var <= 0:
        return float(n)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(centred, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n] / var
    pairs = acf[: n - n % 2].reshape(-1, 2).sum(axis=1)
    stop = np.flatnonzero(pairs <= 0)
    keep = pairs[: stop[0]] if stop.size else pairs
    tau = 2.0 * float(keep.sum()) - 1.0
    r1 = float(acf[1])
    r1 = min(r1 + (1.0 + 4.0 * max(r1, 0.0)) / n, MAX_LAG1)
    if r1 > 0:
        tau = max(tau, (1.0 + r1) / (1.0 - r1))
    return float(min(max(n / max(tau, 1e-9), 2.0), n))


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _CF_ITERATIONS + 1):
        m2 = 2 * m
        even = m * (b - m) * x / ((a + m2 - 1) * (a + m2))
        odd = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))
        for num in (even, odd):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _CF_EPS:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta ``I_x(a, b)`` for ``0 <= x <= 1``."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: float) -> float:
    """Two-sided p-value of Student's t statistic ``t`` with ``df`` degrees of freedom."""
    if math.isnan(t):
        return 1.0
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def log_scale(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``log(v + c)`` of two non-negative samples, ``c`` = ``LOG_FLOOR`` times the larger mean (zeros stay finite)."""
    level = max(float(np.mean(x)) if len(x) else 0.0, float(np.mean(y)) if len(y) else 0.0)
    floor = LOG_FLOOR * level if level > 0 else 1.0
    return np.log(x + floor), np.log(y + floor)


def welch(x: NDArray[np.float64], y: NDArray[np.float64], log: bool = False) -> Test:
    """Welch's t-test of the means of ``x`` and ``y`` with autocorrelation-corrected sample sizes.

    With ``log`` (non-negative data such as rates and latencies) the test and
    the effect are of ``log_scale`` values: a shift there is a ratio.
    """
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if log and len(x) and len(y) and min(float(x.min()), float(y.min())) >= 0:
        x, y = log_scale(x, y)
    nx, ny = len(x), len(y)
    if nx < MIN_SAMPLES or ny < MIN_SAMPLES:
        mx = float(x.mean()) if nx else math.nan
        my = float(y.mean()) if ny else math.nan
        return Test(mx, my, nx, ny, float(nx), float(ny), math.nan, 1.0)
    mx, my = float(x.mean()), float(y.mean())
    vx, vy = float(x.var(ddof=1)), float(y.var(ddof=1))
    ex, ey = effective_size(x), effective_size(y)
    diff = my - mx
    spread = math.sqrt((vx + vy) / 2.0)
    if spread == 0:
        effect = 0.0 if diff == 0 else math.copysign(math.inf, diff)
        return Test(mx, my, nx, ny, ex, ey, effect, 1.0 if diff == 0 else 0.0)
    se2x, se2y = vx / ex, vy / ey
    se = math.sqrt(se2x + se2y)
    df_den = (se2x * se2x / max(ex - 1.0, 1.0)) + (se2y * se2y / max(ey - 1.0, 1.0))
    df = (se2x + se2y) ** 2 / df_den if df_den > 0 else 1.0
    return Test(mx, my, nx, ny, ex, ey, diff / spread, t_two_sided(diff / se, max(df, 1.0)))


def benjamini_hochberg(p_values: Sequence[float], q: float = FDR_Q) -> NDArray[np.bool_]:
    """Which hypotheses are rejected at false discovery rate ``q``."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    out = np.zeros(m, dtype=bool)
    if m == 0:
        return out
    order = np.argsort(p, kind="stable")
    passed = np.flatnonzero(p[order] <= q * np.arange(1, m + 1) / m)
    if passed.size:
        out[order[: passed[-1] + 1]] = True
    return out


def relative_change(base: float, target: float) -> float:
    """``(target - base) / |base|``; infinite when only the base is zero, 0 when both are."""
    if base == 0:
        return 0.0 if target == 0 else math.copysign(math.inf, target)
    return (target - base) / abs(base)


def decide(
    tests: Sequence[Test], relative: Sequence[float], q: float = FDR_Q, min_effect: float = MIN_EFFECT,
    min_relative: float = MIN_RELATIVE,
) -> list[bool]:
    """Whether each test is significant: discovered under FDR ``q`` and large in practice.

    ``relative`` is each series' relative change of its reported values
    (for histogram quantiles that of the merged distributions).
    """
    discovered = benjamini_hochberg([t.p_value for t in tests], q)
    return [
        bool(hit) and abs(t.effect) >= min_effect and abs(rel) >= min_relative
        for t, rel, hit in zip(tests, relative, discovered, strict=True)
    ]
