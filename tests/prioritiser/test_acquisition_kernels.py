"""Tests for the SIMD kernels behind prioritiser.acquisition: their log, exp and results."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numba import njit

from prioritiser import _sticks
from prioritiser._vector_math import vector_exp, vector_log
from prioritiser.acquisition import question_mutual_information
from tests.prioritiser.test_acquisition import naive_stick_breaking, oracle_mi, posterior


@njit(error_model="numpy")
def _logs(values, out):
    for i in range(values.shape[0]):
        out[i] = vector_log(values[i])


@njit(error_model="numpy")
def _exps(values, out):
    for i in range(values.shape[0]):
        out[i] = vector_exp(values[i])


def _ulps(values: np.ndarray, expected: np.ndarray) -> np.ndarray:
    return np.abs(values - expected) / np.spacing(np.abs(expected))


def test_vector_log_is_within_one_ulp_of_numpy_over_the_double_range():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            10.0 ** rng.uniform(-323, 308, 200_000),  # subnormals included
            rng.uniform(0.5, 2.0, 200_000),
            1.0 + rng.normal(0.0, 1e-9, 1_000),
            [5e-324, 2.2250738585072014e-308, 0.5, 2.0, 1.7976931348623157e308],
        ]
    )
    out = np.empty_like(values)
    _logs(values, out)
    expected = np.log(values)
    assert _ulps(out, expected).max() <= 1.0
    _logs(np.array([1.0]), out[:1])
    assert out[0] == 0.0


def test_vector_exp_is_within_two_ulps_of_numpy_and_zero_below_its_range():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.uniform(-708.0, 709.0, 200_000), rng.uniform(-1.0, 1.0, 1_000)])
    out = np.empty_like(values)
    _exps(values, out)
    assert _ulps(out, np.exp(values)).max() <= 2.0
    _exps(np.array([-709.0, -1e300, 0.0]), out[:3])
    assert out[:3].tolist() == [0.0, 0.0, 1.0]


def _reference(alpha: np.ndarray, vote_counts: np.ndarray, method: str) -> list[float]:
    """One galaxy at a time through scipy's pmfs (the tests' independent oracles)."""
    values = []
    for galaxy, n_votes in zip(alpha, vote_counts, strict=True):
        if n_votes == 0:
            values.append(0.0)
        elif method == "exact" or alpha.shape[2] == 2:
            values.append(max(oracle_mi(galaxy, int(n_votes)), 0.0))
        else:
            values.append(naive_stick_breaking(galaxy, int(n_votes)))
    return values


@pytest.mark.parametrize("n_answers", [2, 3, 4, 6])
@pytest.mark.parametrize("low,high", [(-3.0, 4.0), (0.0, 2.1)], ids=["1e-3..1e4", "1..126"])
def test_kernels_match_scipy_on_random_posteriors_with_extreme_concentrations(n_answers, low, high):
    """Tolerance 1e-10 nats absolute (the goal is agreement within 1e-9).

    Concentrations below 1 take the log-space pass, those from 1 to ~100 (Zoobot's range) the
    ratio pass; the first range mixes both within a galaxy.
    """
    rng = np.random.default_rng(20 + n_answers)
    alpha = 10.0 ** rng.uniform(low, high, (40, 15, n_answers))
    vote_counts = rng.integers(0, 41, 40)
    sticks = question_mutual_information(alpha, vote_counts, method="stick_breaking")
    np.testing.assert_allclose(sticks, _reference(alpha, vote_counts, "sticks"), atol=1e-10)
    small = np.minimum(vote_counts, {2: 40, 3: 12, 4: 6, 6: 3}[n_answers])
    exact = question_mutual_information(alpha, small, method="exact")
    np.testing.assert_allclose(exact, _reference(alpha, small, "exact"), atol=1e-10)


def test_sample_counts_that_do_not_fill_a_vector_match_scipy():
    """Samples are padded to a multiple of 8 lanes; padded lanes must carry no weight."""
    rng = np.random.default_rng(30)
    for n_samples in [2, 7, 8, 9, 17]:
        alpha = posterior(rng, 6, n_samples, 3, spread=0.8)
        vote_counts = rng.integers(1, 41, 6)
        values = question_mutual_information(alpha, vote_counts, method="stick_breaking")
        np.testing.assert_allclose(
            values, _reference(alpha, vote_counts, "sticks"), rtol=1e-9, atol=1e-12
        )


def test_ratios_past_the_float_range_fall_back_to_log_space():
    """a up to 1e12 against b >= 1: p(N) / p(0) passes 1e308, so the ratio pass overflows.

    scipy's log-beta loses ~1e-6 here, so the oracle is mpmath at 30 digits; tolerance 1e-10.
    """
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    rng = np.random.default_rng(31)
    alpha = 10.0 ** rng.uniform(0.0, 12.0, (4, 6, 2))
    alpha[0, :, 0] = 10.0 ** rng.uniform(9.0, 12.0, 6)  # certain to overflow
    alpha[0, :, 1] = 1.0 + rng.random(6)
    for n_votes in [20, 40]:
        values = question_mutual_information(alpha, n_votes)
        for galaxy, value in zip(alpha, values, strict=True):
            pmfs = [
                [
                    mpmath.binomial(n_votes, k)
                    * mpmath.beta(k + mpmath.mpf(a), n_votes - k + mpmath.mpf(b))
                    / mpmath.beta(mpmath.mpf(a), mpmath.mpf(b))
                    for k in range(n_votes + 1)
                ]
                for a, b in galaxy
            ]
            mixture = [sum(column) / len(pmfs) for column in zip(*pmfs, strict=True)]
            information = -sum(m * mpmath.log(m) for m in mixture if m > 0) + sum(
                p * mpmath.log(p) for pmf in pmfs for p in pmf if p > 0
            ) / len(pmfs)
            assert value == pytest.approx(float(information), abs=1e-10)


def test_the_ratio_pass_compiles_to_simd_instructions():
    """The innermost loop of the hot kernel must vectorise: no libm call, vector division.

    Compiled afresh (the cached kernel cannot be inspected); any x86-64 or ARM target vectorises
    float64 by 2 lanes or more.
    """
    kernel = njit(error_model="numpy", fastmath={"contract"})(_sticks._linear_pass.py_func)
    lanes = np.ones(16)
    scratch = np.empty((4, 16))
    assert kernel(lanes, lanes, 5, np.empty((6, 16)), *scratch)
    llvm_ir = kernel.inspect_llvm(kernel.signatures[0])
    assert re.search(r"fdiv contract <\d+ x double>", llvm_ir)
    assert re.search(r"bitcast <\d+ x double> %[\w.]+ to <\d+ x i64>", llvm_ir)
    assert not re.search(r"call [^\n]*@(llvm\.)?log", llvm_ir)
