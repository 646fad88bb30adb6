import numpy as np
import pytest

from tests.datasets.conftest import entropy, with_values
from zoobot.datasets.simulated import (
    answer_probabilities,
    ask_volunteers,
    classify,
    perturb_probabilities,
    walk_order,
)
from zoobot.errors import SchemaError
from zoobot.schemas import decals_dr5_schema, gz2_schema, rings_schema

SCHEMA = decals_dr5_schema
COLUMN = {name: i for i, name in enumerate(SCHEMA.label_cols)}


def fraction(votes: np.ndarray, column: str) -> np.ndarray:
    return SCHEMA.vote_fractions(votes)[:, COLUMN[column]]


def assert_tree_consistent(votes: np.ndarray, n_volunteers) -> None:
    for question, answers in zip(SCHEMA.questions, SCHEMA.question_slices, strict=True):
        total = votes[:, answers].sum(axis=1)
        parent = SCHEMA.dependencies[question.name]
        expected = n_volunteers if parent is None else votes[:, COLUMN[parent]]
        np.testing.assert_array_equal(total, np.broadcast_to(expected, total.shape))


def test_probabilities_sum_to_one_per_question(truths):
    p = answer_probabilities(truths)
    assert p.shape == (len(truths), len(SCHEMA.label_cols))
    assert (p >= 1e-4).all()
    for answers in SCHEMA.question_slices:
        np.testing.assert_allclose(p[:, answers].sum(axis=1), 1.0)


def test_rings_schema_is_supported_and_gz2_is_refused(truths):
    ringed = with_values(truths, ring_strength=0.9, inclination_deg=20.0)
    p = answer_probabilities(ringed, rings_schema)
    q = answer_probabilities(with_values(truths, ring_strength=0.0), rings_schema)
    assert p[:, 0].mean() > q[:, 0].mean() + 0.3
    with pytest.raises(SchemaError, match="cannot answer question"):
        answer_probabilities(truths, gz2_schema)


@pytest.mark.parametrize("n_volunteers", [40, "array"])
def test_votes_are_tree_consistent(truths, n_volunteers):
    if n_volunteers == "array":
        n_volunteers = np.arange(len(truths)) % 50
    votes = ask_volunteers(answer_probabilities(truths), n_volunteers, np.random.default_rng(1))
    assert votes.dtype.kind == "i" and (votes >= 0).all()
    assert_tree_consistent(votes, n_volunteers)


def test_same_seed_gives_same_votes(truths):
    p = answer_probabilities(truths)
    a = ask_volunteers(p, 40, np.random.default_rng(7))
    b = ask_volunteers(p, 40, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, ask_volunteers(p, 40, np.random.default_rng(8)))


def votes_for(truths, **values):
    p = answer_probabilities(with_values(truths, **values))
    return ask_volunteers(p, 40, np.random.default_rng(0))


def test_inclination_drives_edge_on_votes(truths):
    disks = truths[truths["morphology"] == "spiral"]
    edge_on = fraction(votes_for(disks, inclination_deg=88.0), "disk-edge-on_yes")
    face_on = fraction(votes_for(disks, inclination_deg=15.0), "disk-edge-on_yes")
    assert edge_on.mean() > face_on.mean() + 0.5


def test_bar_strength_drives_bar_votes(truths):
    disks = truths[truths["morphology"] == "spiral"]
    barred = votes_for(disks, bar_strength=0.9, inclination_deg=20.0)
    unbarred = votes_for(disks, bar_strength=0.0, inclination_deg=20.0)
    bar_votes = lambda v: fraction(v, "bar_strong") + fraction(v, "bar_weak")  # noqa: E731
    assert bar_votes(barred).mean() > bar_votes(unbarred).mean() + 0.3


def test_arm_strength_drives_spiral_votes(truths):
    disks = truths[truths["morphology"] == "spiral"]
    face_on = with_values(disks, inclination_deg=20.0)
    armed = fraction(votes_for(face_on, arm_strength=0.9), "has-spiral-arms_yes")
    plain = fraction(votes_for(face_on, arm_strength=0.0), "has-spiral-arms_yes")
    assert armed.mean() > plain.mean() + 0.3


def test_faint_galaxies_get_less_certain_votes(truths):
    spirals = truths[(truths["morphology"] == "spiral") & (truths["arm_strength"] > 0.5)]
    spirals = with_values(spirals, inclination_deg=30.0, pitch_angle_deg=25.0)
    faint = with_values(spirals, flux=spirals["flux"] / 300.0)
    assert faint["visibility"].mean() < spirals["visibility"].mean() - 0.3
    for question in ("smooth-or-featured", "has-spiral-arms", "spiral-winding", "bar"):
        answers = SCHEMA.question_slices[SCHEMA.question_names.index(question)]
        bright_p = answer_probabilities(spirals)[:, answers]
        faint_p = answer_probabilities(faint)[:, answers]
        assert entropy(faint_p).mean() > entropy(bright_p).mean(), question
    # The first question is asked of everyone, so its vote fractions show it too.
    first = SCHEMA.question_slices[0]
    bright_votes = SCHEMA.vote_fractions(votes_for(spirals))[:, first]
    faint_votes = SCHEMA.vote_fractions(votes_for(faint))[:, first]
    assert entropy(faint_votes).mean() > entropy(bright_votes).mean() + 0.1


def test_walk_order_puts_parents_first():
    order = [SCHEMA.question_names[i] for i in walk_order(SCHEMA)]
    assert sorted(order) == sorted(SCHEMA.question_names)
    for question, parent in SCHEMA.dependencies.items():
        if parent is not None:
            assert order.index(SCHEMA.question_of(parent).name) < order.index(question)


def test_classify_walks_only_reached_questions(truths):
    p = answer_probabilities(truths)
    rng = np.random.default_rng(3)
    order = [SCHEMA.question_names[i] for i in walk_order(SCHEMA)]
    for row in p[:50]:
        answers = classify(row, rng)
        assert list(answers) == [q for q in order if q in answers]
        assert "smooth-or-featured" in answers and "merging" in answers
        chosen = {SCHEMA.get_question(q).answers[a].name for q, a in answers.items()}
        for question in answers:
            parent = SCHEMA.dependencies[question]
            assert parent is None or parent in chosen
        for question in set(SCHEMA.question_names) - set(answers):
            assert SCHEMA.dependencies[question] not in chosen


def test_classify_follows_the_probabilities_and_skill_flattens_them(truths):
    p = answer_probabilities(truths)[0]
    rng = np.random.default_rng(4)
    first = [classify(p, rng)["smooth-or-featured"] for _ in range(3000)]
    observed = np.bincount(first, minlength=3) / len(first)
    np.testing.assert_allclose(observed, p[:3], atol=0.03)
    random_choices = [classify(p, rng, skill=0.0)["smooth-or-featured"] for _ in range(3000)]
    np.testing.assert_allclose(np.bincount(random_choices, minlength=3) / 3000, 1 / 3, atol=0.03)


def test_kappa_adds_over_dispersion(truths):
    p = np.repeat(answer_probabilities(truths)[:1], 2000, axis=0)
    rng = np.random.default_rng(5)
    plain = ask_volunteers(p, 40, rng, kappa=None)[:, 0]
    dispersed = ask_volunteers(p, 40, rng, kappa=3.0)[:, 0]
    assert dispersed.var() > 2.0 * plain.var()
    assert abs(dispersed.mean() - plain.mean()) < 2.0
    perturbed = perturb_probabilities(p[:10], rng, kappa=5.0)
    for answers in SCHEMA.question_slices:
        np.testing.assert_allclose(perturbed[:, answers].sum(axis=1), 1.0)


def test_invalid_inputs_raise_clear_errors(truths):
    p = answer_probabilities(truths[:3])
    rng = np.random.default_rng(0)
    with pytest.raises(SchemaError, match="34 answers"):
        ask_volunteers(p[:, :10], 40, rng)
    with pytest.raises(ValueError, match="n_volunteers"):
        ask_volunteers(p, -1, rng)
    with pytest.raises(ValueError, match="one galaxy"):
        classify(p, rng)
    with pytest.raises(ValueError, match="skill"):
        classify(p[0], rng, skill=1.5)
    with pytest.raises(ValueError, match="kappa"):
        perturb_probabilities(p, rng, kappa=0.0)
