import numpy as np
import pandas as pd
import pytest
from scipy import stats

from zoobot.datasets.simulated import ARTIFACT_KINDS, MORPHOLOGIES, draw_truths


def test_same_seed_gives_same_truths_and_other_seeds_differ():
    pd.testing.assert_frame_equal(draw_truths(30, 5), draw_truths(30, 5))
    assert not draw_truths(30, 5)["flux"].equals(draw_truths(30, 6)["flux"])


def test_generator_seed_is_accepted():
    a = draw_truths(10, np.random.default_rng(3))
    b = draw_truths(10, np.random.default_rng(3))
    pd.testing.assert_frame_equal(a, b)


def test_parameters_lie_in_their_ranges(truths):
    assert truths["inclination_deg"].between(0, 90).all()
    assert truths["bulge_to_total"].between(0, 1).all()
    assert truths["visibility"].between(0, 1).all()
    assert truths["axis_ratio"].between(0, 1).all()
    assert (truths["flux"] > 0).all() and (truths["half_light_radius"] > 0).all()
    assert set(truths["morphology"]) <= set(MORPHOLOGIES)
    assert set(truths["artifact"]) <= set(ARTIFACT_KINDS)
    assert truths["image_seed"].is_unique


def test_only_spirals_have_arms_and_ellipticals_have_no_bars(truths):
    spiral = truths["morphology"] == "spiral"
    assert (truths.loc[spiral, "arm_count"] >= 1).all()
    assert (truths.loc[~spiral, ["arm_count", "arm_strength"]] == 0).all().all()
    elliptical = truths["morphology"] == "elliptical"
    assert (truths.loc[elliptical, "bar_strength"] == 0).all()
    assert truths.loc[elliptical, "bulge_to_total"].mean() > 0.7
    assert truths.loc[spiral, "bulge_to_total"].mean() < 0.4


def test_distant_galaxies_are_smaller_fainter_and_less_visible(truths):
    for column in ("half_light_radius", "flux", "visibility"):
        rho = stats.spearmanr(truths["redshift"], truths[column]).statistic
        assert rho < -0.3, column


def test_empty_and_negative_counts():
    assert len(draw_truths(0, 1)) == 0
    with pytest.raises(ValueError, match="n must be >= 0"):
        draw_truths(-1, 1)
