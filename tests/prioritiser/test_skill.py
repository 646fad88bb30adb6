"""Volunteer skill: recovering simulated volunteers' confusion, and how votes are weighed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from prioritiser.skill import SkillModel, vote_evidence
from zoobot.datasets.simulated import answer_probabilities, draw_truths
from zoobot.datasets.simulated.crowd import KINDS, crowd_classify, make_crowd
from zoobot.schemas import decals_dr5_schema as SCHEMA

FIRST = SCHEMA.question_slices[0]


def _informativeness(confusion: np.ndarray) -> np.ndarray:
    """The same summary as SkillModel.weights, from true confusion matrices [n, K, K]."""
    model = SkillModel(SCHEMA, confusion.shape[0], prior_strength=1e-9)
    model.counts[0] = confusion * 1e9
    return model.weights()[:, 0]


@pytest.fixture(scope="module")
def votes() -> dict[str, np.ndarray]:
    """60 volunteers, 600 votes each on smooth-or-featured, galaxies' fractions known."""
    rng = np.random.default_rng(3)
    crowd = make_crowd(60, rng, SCHEMA)
    fractions = answer_probabilities(draw_truths(3000, 3), SCHEMA)
    galaxy = rng.integers(0, 3000, size=36_000)
    volunteer = np.repeat(np.arange(60), 600)
    said = crowd_classify(fractions[galaxy], volunteer, crowd, rng, SCHEMA)
    return {
        "crowd": crowd,
        "mean": fractions[galaxy][:, FIRST],
        "volunteer": volunteer,
        "said": said[:, 0],
    }


def test_skills_recover_simulated_volunteers(votes: dict) -> None:
    model = SkillModel(SCHEMA, 60)
    for _ in range(10):  # EM steps from every vote
        model.reestimate(0, votes["volunteer"], votes["said"], votes["mean"])
    truth = votes["crowd"].confusion(0, SCHEMA)
    estimate = model.confusion(0, np.arange(60))
    # Stated tolerance (600 votes per volunteer): every confusion entry of the two common true
    # answers (smooth, featured: ~230 and ~340 votes each) within 0.12 of the simulated one (the
    # rare artifact row, ~30 votes, stays near the prior); weights within 0.1 on average and
    # ranked with Spearman >= 0.85.
    assert np.abs(estimate - truth)[:, :2].max() < 0.12
    weights, true_weights = model.weights()[:, 0], _informativeness(truth)
    assert np.abs(weights - true_weights).mean() < 0.1
    assert spearmanr(weights, true_weights)[0] >= 0.85


def test_spammer_weight_falls(votes: dict) -> None:
    model = SkillModel(SCHEMA, 60)
    spammers = np.flatnonzero(votes["crowd"].kind == KINDS.index("spammer"))
    good = np.flatnonzero(votes["crowd"].kind == KINDS.index("good"))
    assert spammers.size and good.size
    before = model.weights()[spammers, 0]
    model.learn(0, votes["volunteer"], votes["said"], votes["mean"])  # online
    online = model.weights()[spammers, 0]
    for _ in range(2):
        model.reestimate(0, votes["volunteer"], votes["said"], votes["mean"])
    after = model.weights()[:, 0]
    assert np.all(online < before)
    assert np.all(after[spammers] < before)
    assert after[spammers].max() < 0.15  # the true weight is 0
    assert after[good].min() > 2 * after[spammers].max()


def test_vote_evidence_weighs_by_skill() -> None:
    mean = np.tile([0.5, 0.3, 0.2], (3, 1))
    perfect = np.eye(3)
    random_clicker = np.full((3, 3), 1 / 3)
    skilled = 0.8 * np.eye(3) + 0.2 / 3
    confusion = np.stack([perfect, random_clicker, skilled])
    evidence = vote_evidence(confusion, np.array([1, 1, 1]), mean)
    np.testing.assert_allclose(evidence[0], [0, 1, 0])
    np.testing.assert_allclose(evidence[1], 0, atol=1e-12)
    assert 0.5 < evidence[2, 1] < 1 and evidence[2, [0, 2]].sum() == pytest.approx(0)


def test_new_volunteers_start_at_the_prior() -> None:
    model = SkillModel(SCHEMA, 2, prior_skill=0.9)
    model.grow(5)
    confusion = model.confusion(0, np.array([4]))[0]
    np.testing.assert_allclose(np.diag(confusion), 0.9 + 0.1 / 3)
    with pytest.raises(ValueError, match="prior_skill"):
        SkillModel(SCHEMA, 1, prior_skill=1.5)
