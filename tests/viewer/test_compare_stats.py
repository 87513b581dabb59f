"""The statistics core of ``rezolus compare``: t distribution, effective sample size, Welch, FDR, verdicts."""

import math

import numpy as np
import pytest

from rezolus_viewer import stats


def ar1(rng, n, phi):
    """A stationary AR(1) series with unit innovations."""
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - phi * phi)
    for i in range(1, n):
        x[i] = phi * x[i - 1] + e[i]
    return x


@pytest.mark.parametrize(("t", "df", "p"), [(2.228139, 10, 0.05), (12.7062, 1, 0.05), (2.575829, 1e7, 0.01),
                                            (0.0, 5, 1.0), (3.169273, 10, 0.01)])
def test_student_t_two_sided_p_values_match_tables(t, df, p):
    """Student t two sided p values match tables."""
    assert stats.t_two_sided(t, df) == pytest.approx(p, rel=1e-4)


def test_effective_size_is_n_for_white_noise_and_near_theory_for_ar1():
    """Effective size is n for white noise and near theory for ar1."""
    rng = np.random.default_rng(3)
    assert stats.effective_size(rng.normal(size=4000)) > 3000
    # AR(1) with phi = 0.9: n (1 - phi) / (1 + phi) = 210.5 of 4000
    ess = np.median([stats.effective_size(ar1(rng, 4000, 0.9)) for _ in range(20)])
    assert 150 < ess < 280
    assert stats.effective_size(np.full(50, 3.0)) == 50


@pytest.mark.parametrize(("phi", "n"), [(0.0, 30), (0.5, 30), (0.9, 40), (0.9, 600)])
def test_null_false_positive_rate_is_near_nominal_for_autocorrelated_series(phi, n):
    """Without the correction an AR(0.9) series of 40 rejects a true null about 30% of the time at 5%."""
    rng = np.random.default_rng(int(phi * 10) + n)
    runs = 600 if n < 100 else 200
    p = np.array([stats.welch(ar1(rng, n, phi), ar1(rng, n, phi)).p_value for _ in range(runs)])
    assert np.mean(p < 0.05) < 0.09
    assert np.mean(p < 0.01) < 0.03


def test_a_real_shift_is_found_with_its_effect():
    """A real shift is found with its effect."""
    rng = np.random.default_rng(5)
    test = stats.welch(ar1(rng, 60, 0.5), ar1(rng, 60, 0.5) + 3.0)
    assert test.p_value < 1e-4
    assert test.effect > 1.5


def test_identical_samples_have_p_one_and_no_effect():
    """Identical samples have p one and no effect."""
    x = np.random.default_rng(1).normal(size=50)
    test = stats.welch(x, x.copy())
    assert test.p_value == pytest.approx(1.0)
    assert test.effect == 0


def test_constant_sides_that_differ_have_infinite_effect():
    """Constant sides that differ have infinite effect."""
    test = stats.welch(np.full(10, 4.0), np.full(10, 8.0))
    assert test.effect == math.inf
    assert test.p_value == 0


def test_nan_intervals_are_dropped_and_too_few_samples_never_reject():
    """Nan intervals are dropped and too few samples never reject."""
    x = np.array([1.0, np.nan, 2.0, 3.0, np.nan])
    test = stats.welch(x, np.array([10.0, 11.0]))
    assert test.base_n == 3
    assert test.target_n == 2
    assert test.p_value == 1.0


def test_benjamini_hochberg_textbook_example():
    """Benjamini hochberg textbook example."""
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    # sorted 0.005, 0.01, 0.03, 0.04, 0.2 vs 0.05 * k / 5 = 0.01, 0.02, 0.03, 0.04, 0.05
    assert stats.benjamini_hochberg(p, 0.05).tolist() == [True, True, True, True, False]
    assert stats.benjamini_hochberg(p, 0.025).tolist() == [True, False, False, True, False]
    assert stats.benjamini_hochberg([], 0.05).tolist() == []


def test_decide_needs_discovery_effect_and_relative_change():
    """Decide needs discovery effect and relative change."""
    big = stats.Test(100, 200, 50, 50, 20, 20, 5.0, 1e-12)
    small_effect = stats.Test(100, 200, 50, 50, 20, 20, 0.5, 1e-12)
    small_change = stats.Test(100, 101, 50, 50, 20, 20, 5.0, 1e-12)
    unproven = stats.Test(100, 200, 50, 50, 20, 20, 5.0, 0.2)
    tests = [big, small_effect, small_change, unproven]
    relative = [stats.relative_change(t.base_mean, t.target_mean) for t in tests]
    assert stats.decide(tests, relative) == [True, False, False, False]


def test_relative_change_edges():
    """Relative change edges."""
    assert stats.relative_change(0, 0) == 0
    assert stats.relative_change(0, 5) == math.inf
    assert stats.relative_change(-4, -2) == 0.5


def test_hundreds_of_unchanged_autocorrelated_series_mark_almost_nothing():
    """500 null series (AR(0.7) rates, 40 intervals a side, through the whole compare path): at most 1 marked."""
    from rezolus_viewer import compare  # noqa: PLC0415
    from rezolus_viewer.samples import Samples  # noqa: PLC0415

    rng = np.random.default_rng(11)
    total = 0
    for _ in range(4):
        base, target = [], []
        for k in range(500):
            level = 10.0 ** rng.uniform(0, 6)
            for side in (base, target):
                values = level * np.exp(0.3 * ar1(rng, 40, 0.7))
                side.append(Samples(f"s{k}", "counter", None, values, float(values.mean())))
        total += sum(r.significant for r in compare.compare(base, target, {}).rows)
    print(f"null series marked: {total} of 2000")
    assert total <= 2
