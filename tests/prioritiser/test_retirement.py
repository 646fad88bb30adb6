"""Retirement decisions: never below the minimum votes, reasons recorded, control share kept."""

from __future__ import annotations

import numpy as np
import pytest

from prioritiser.posterior import combine
from prioritiser.retirement import REASONS, RetirementRule, control_flags, retirement_reasons
from zoobot.schemas import decals_dr5_schema as SCHEMA

N_ANSWERS = len(SCHEMA.label_cols)


def _posterior(n: int, certainty: float, rng: np.random.Generator):
    """n galaxies whose posteriors have about ``certainty`` effective votes per question."""
    prior = rng.dirichlet(np.ones(N_ANSWERS), size=(n, 2)) * certainty + 0.1
    return combine(prior, np.zeros((n, N_ANSWERS)), SCHEMA)


@pytest.mark.parametrize("certainty", [1.0, 50.0, 1e6])
def test_never_retires_below_min_votes(certainty: float) -> None:
    rng = np.random.default_rng(0)
    rule = RetirementRule(min_votes=5, max_votes=40, information_threshold=10.0, decided_z=0.0)
    votes = rng.integers(0, 60, size=500)
    control = rng.random(500) < 0.2
    reasons = retirement_reasons(_posterior(500, certainty, rng), votes, control, rule, SCHEMA)
    assert np.all(reasons[votes < rule.min_votes] == 0)
    adaptive = ~control
    # thresholds so loose that every adaptive galaxy with enough votes retires
    assert np.all(reasons[adaptive & (votes >= rule.min_votes)] > 0)
    assert np.all(reasons[adaptive & (votes >= 40)] == REASONS.index("max_votes"))
    assert np.all(reasons[control & (votes < 40)] == 0)  # control keeps the fixed rule
    assert np.all(reasons[control & (votes >= 40)] == REASONS.index("control"))


def test_uncertain_galaxies_keep_collecting_votes() -> None:
    rng = np.random.default_rng(1)
    rule = RetirementRule(min_votes=3)
    votes = np.full(200, 10)
    reasons = retirement_reasons(
        _posterior(200, 1.0, rng), votes, np.zeros(200, bool), rule, SCHEMA
    )
    assert np.all(reasons == 0)


def test_certain_galaxies_retire_with_a_reason() -> None:
    counts = np.zeros((1, N_ANSWERS))
    for answers in SCHEMA.question_slices:
        counts[0, answers.start] = 400.0  # everyone agrees on every question
    posterior = combine(np.ones((1, 1, N_ANSWERS)), counts, SCHEMA)
    rule = RetirementRule(min_votes=3)
    reasons = retirement_reasons(posterior, np.array([3]), np.zeros(1, bool), rule, SCHEMA)
    assert REASONS[reasons[0]] in ("decided", "information")


def test_control_flags_are_a_reproducible_share() -> None:
    flags = control_flags(20_000, 0.1, seed=4)
    assert flags.mean() == pytest.approx(0.1, abs=0.01)
    np.testing.assert_array_equal(flags, control_flags(20_000, 0.1, seed=4))


def test_bad_rules_and_shapes_are_named() -> None:
    with pytest.raises(ValueError, match="min_votes"):
        RetirementRule(min_votes=10, max_votes=5)
    with pytest.raises(ValueError, match="control_share"):
        RetirementRule(control_share=1.5)
    posterior = _posterior(3, 5.0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="votes and is_control"):
        retirement_reasons(posterior, np.zeros(2), np.zeros(3, bool), RetirementRule(), SCHEMA)
