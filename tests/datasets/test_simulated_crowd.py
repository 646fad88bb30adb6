"""The simulated crowd: tree-consistent walks, and each kind of volunteer's answers."""

from __future__ import annotations

import numpy as np
import pytest

from zoobot.datasets.simulated import answer_probabilities, crowd_classify, make_crowd
from zoobot.datasets.simulated.crowd import KINDS
from zoobot.schemas import decals_dr5_schema as SCHEMA


def test_follow_up_questions_only_after_their_parent_answer(truths) -> None:
    rng = np.random.default_rng(0)
    crowd = make_crowd(50, rng)
    fractions = answer_probabilities(truths)
    said = crowd_classify(fractions, rng.integers(0, 50, len(truths)), crowd, rng)
    columns = {name: i for i, name in enumerate(SCHEMA.label_cols)}
    for q, question in enumerate(SCHEMA.questions):
        parent = SCHEMA.dependencies[question.name]
        if parent is None:
            assert np.all(said[:, q] >= 0)
            continue
        parent_q = int(SCHEMA.question_index[columns[parent]])
        took_parent = said[:, parent_q] == columns[parent] - SCHEMA.question_slices[parent_q].start
        np.testing.assert_array_equal(said[:, q] >= 0, took_parent)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_answers_by_its_confusion(kind: str) -> None:
    rng = np.random.default_rng(1)
    crowd = make_crowd(1, rng, shares={kind: 1.0})
    p = np.tile(answer_probabilities_row(), (20_000, 1))
    said = crowd_classify(p, np.zeros(20_000, dtype=int), crowd, rng)[:, 0]
    expected = p[0, SCHEMA.question_slices[0]] @ crowd.confusion(0)[0]
    observed = np.bincount(said, minlength=3) / said.size
    np.testing.assert_allclose(observed, expected, atol=0.015)
    if kind == "spammer":
        np.testing.assert_allclose(expected, 1 / 3)
    if kind == "artifact_happy":
        assert expected[2] > 0.4


def answer_probabilities_row() -> np.ndarray:
    """One galaxy's fractions: mostly featured on the first question, uniform elsewhere."""
    row = np.zeros(len(SCHEMA.label_cols))
    for answers in SCHEMA.question_slices:
        row[answers] = 1.0 / (answers.stop - answers.start)
    row[SCHEMA.question_slices[0]] = [0.2, 0.75, 0.05]
    return row


def test_bad_shares_are_named() -> None:
    with pytest.raises(ValueError, match="shares"):
        make_crowd(10, np.random.default_rng(0), shares={"good": 0.5})
    with pytest.raises(ValueError, match="shares"):
        make_crowd(10, np.random.default_rng(0), shares={"robot": 1.0})
