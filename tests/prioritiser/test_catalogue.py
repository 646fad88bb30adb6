"""The catalogue frame and skill storage round trip."""

from __future__ import annotations

import numpy as np
import pytest

from prioritiser.catalogue import catalogue_frame
from prioritiser.posterior import combine
from prioritiser.retirement import REASONS
from prioritiser.skill import SkillModel
from zoobot.schemas import decals_dr5_schema as SCHEMA

N_ANSWERS = len(SCHEMA.label_cols)


def test_catalogue_has_every_galaxy_with_reason_and_flags() -> None:
    rng = np.random.default_rng(0)
    posterior = combine(rng.gamma(2.0, 2.0, (4, 3, N_ANSWERS)), np.zeros((4, N_ANSWERS)), SCHEMA)
    reasons = np.array([0, REASONS.index("decided"), REASONS.index("control"), 0])
    frame = catalogue_frame(
        np.array([10, 11, 12, 13]),
        posterior,
        np.array([0, 5, 40, 2]),
        reasons,
        np.array([False, False, True, False]),
        SCHEMA,
    )
    assert list(frame["id_str"]) == ["10", "11", "12", "13"]
    assert list(frame["retirement_reason"]) == ["", "decided", "control", ""]
    assert list(frame["retired"]) == [False, True, True, False]
    first = [f"{name}_fraction" for name in SCHEMA.label_cols[:3]]
    np.testing.assert_allclose(frame[first].sum(axis=1), 1.0)
    assert (frame[[f"{n}_std" for n in SCHEMA.label_cols]] > 0).all().all()
    with pytest.raises(ValueError, match="one entry per id"):
        catalogue_frame(np.arange(3), posterior, np.zeros(4), reasons, np.zeros(4, bool), SCHEMA)


def test_skills_round_trip_through_arrays() -> None:
    model = SkillModel(SCHEMA, 3)
    model.learn(0, np.array([0, 2]), np.array([1, 2]), np.array([[0.2, 0.7, 0.1]] * 2))
    again = SkillModel.from_arrays(SCHEMA, model.to_arrays())
    for a, b in zip(model.counts, again.counts, strict=True):
        np.testing.assert_array_equal(a, b)
    arrays = model.to_arrays()
    arrays.pop("bar")
    with pytest.raises(ValueError, match="bar"):
        SkillModel.from_arrays(SCHEMA, arrays)
