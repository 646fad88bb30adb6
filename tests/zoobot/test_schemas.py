import numpy as np
import pytest

from zoobot.errors import SchemaError
from zoobot.schemas import (
    DECALS_DR5_ANSWER_NAMES,
    DECALS_DR5_QUESTION_NAMES,
    Schema,
    decals_dr5_schema,
    decals_dr5_workflow,
    fractions_within_questions,
    get_schema,
    gz2_schema,
    list_schemas,
    rings_schema,
    schema_from_panoptes_workflow,
)


def test_builtin_tree_sizes():
    assert (len(decals_dr5_schema.questions), len(decals_dr5_schema.label_cols)) == (10, 34)
    assert (len(gz2_schema.questions), len(gz2_schema.label_cols)) == (10, 30)
    assert (len(rings_schema.questions), len(rings_schema.label_cols)) == (1, 2)
    assert decals_dr5_schema.label_cols[:4] == [
        "smooth-or-featured_smooth",
        "smooth-or-featured_featured-or-disk",
        "smooth-or-featured_artifact",
        "disk-edge-on_yes",
    ]


@pytest.mark.parametrize("name", list_schemas())
def test_every_schema_has_contiguous_answer_slices(name):
    schema = get_schema(name)
    covered = [i for s in schema.question_slices for i in range(s.start, s.stop)]
    assert covered == list(range(len(schema.label_cols)))
    for question, answers in zip(schema.questions, schema.question_slices):
        assert schema.label_cols[answers] == question.label_cols


def test_schema_from_dr5_workflow_matches_builtin_tree():
    built = schema_from_panoptes_workflow(
        decals_dr5_workflow,
        question_names=DECALS_DR5_QUESTION_NAMES,
        answer_names=DECALS_DR5_ANSWER_NAMES,
    )
    assert dict(built.dependencies) == dict(decals_dr5_schema.dependencies)
    assert sorted(built.label_cols) == sorted(decals_dr5_schema.label_cols)
    assert built.panoptes_mapping == decals_dr5_schema.panoptes_mapping
    # T8 answer 0 is "No bulge" and T11 answer 0 is "Merging": not the catalogue's order
    assert built.panoptes_mapping[("T8", 0)] == "bulge-size_none"
    assert built.panoptes_mapping[("T11", 0)] == "merging_merger"
    assert built.panoptes_mapping[("T3", 1)] == "edge-on-bulge_boxy"


def test_schema_from_workflow_slugs_labels_and_finds_dependencies():
    workflow = {
        "first_task": "T0",
        "tasks": {
            "T0": {
                "type": "single",
                "question": "Is there a ring?",
                "answers": [
                    {"label": "![x](http://a/b.png) Yes", "next": "T1"},
                    {"label": "No", "next": "T2"},
                ],
            },
            "T1": {
                "type": "single",
                "question": "How many rings",
                "answers": [{"label": "One", "next": "T2"}, {"label": "Two", "next": "T2"}],
            },
            "T2": {
                "type": "single",
                "question": "Merging?",
                "answers": [{"label": "Yes"}, {"label": "No"}],
            },
            "T3": {
                "type": "multiple",
                "question": "Odd",
                "answers": [{"label": "a"}, {"label": "b"}],
            },
        },
    }
    schema = schema_from_panoptes_workflow(workflow)
    assert schema.question_names == ["is-there-a-ring", "how-many-rings", "merging"]
    assert schema.panoptes_mapping[("T0", 0)] == "is-there-a-ring_yes"
    assert schema.panoptes_mapping[("T1", 1)] == "how-many-rings_two"
    assert schema.dependencies["how-many-rings"] == "is-there-a-ring_yes"
    assert schema.dependencies["merging"] is None


def test_workflow_with_cycle_or_unknown_task_is_rejected():
    cyclic = {
        "tasks": {
            "T0": {
                "type": "single",
                "question": "q",
                "answers": [{"label": "a", "next": "T0"}, {"label": "b"}],
            }
        }
    }
    with pytest.raises(SchemaError, match="cycle"):
        schema_from_panoptes_workflow(cyclic)
    dangling = {
        "tasks": {
            "T0": {
                "type": "single",
                "question": "q",
                "answers": [{"label": "a", "next": "T9"}, {"label": "b"}],
            }
        }
    }
    with pytest.raises(SchemaError, match="T9"):
        schema_from_panoptes_workflow(dangling)


def test_question_asked_probability_follows_the_tree():
    schema = decals_dr5_schema
    fractions = np.zeros((1, 34))
    columns = {c: i for i, c in enumerate(schema.label_cols)}
    for col, value in {
        "smooth-or-featured_featured-or-disk": 0.6,
        "smooth-or-featured_smooth": 0.4,
        "disk-edge-on_no": 0.5,
        "disk-edge-on_yes": 0.5,
        "has-spiral-arms_yes": 0.8,
        "has-spiral-arms_no": 0.2,
    }.items():
        fractions[0, columns[col]] = value
    asked = dict(zip(schema.question_names, schema.question_asked_probability(fractions)[0]))
    assert asked["smooth-or-featured"] == 1.0
    assert asked["merging"] == 1.0
    assert asked["disk-edge-on"] == pytest.approx(0.6)
    assert asked["bar"] == pytest.approx(0.3)
    assert asked["spiral-winding"] == pytest.approx(0.24)
    assert asked["how-rounded"] == pytest.approx(0.4)
    reached = schema.answer_reached_probability(fractions)[0]
    assert reached[columns["has-spiral-arms_yes"]] == pytest.approx(0.24)


def test_vote_fractions_are_zero_for_unasked_questions():
    counts = np.zeros((1, 34))
    counts[0, 0] = 10
    fractions = decals_dr5_schema.vote_fractions(counts)
    assert fractions[0, 0] == 1.0 and fractions[0, 1:].sum() == 0


def test_vote_fractions_normalise_each_posterior_sample_like_each_galaxy():
    concentrations = np.random.default_rng(0).gamma(2.0, 3.0, size=(5, 4, 34)) + 0.1
    fractions = decals_dr5_schema.vote_fractions(concentrations)
    for sample in range(4):
        np.testing.assert_array_equal(
            fractions[:, sample], decals_dr5_schema.vote_fractions(concentrations[:, sample])
        )
    np.testing.assert_allclose(fractions[..., :3].sum(axis=-1), 1.0)


def test_fractions_within_questions_take_any_slices_and_leading_axes():
    counts = np.array([[[1.0, 3.0, 0.0, 0.0, 5.0]], [[2.0, 2.0, 1.0, 3.0, 0.0]]])
    fractions = fractions_within_questions(counts, [slice(0, 2), slice(2, 5)])
    np.testing.assert_allclose(
        fractions, [[[0.25, 0.75, 0.0, 0.0, 1.0]], [[0.5, 0.5, 0.25, 0.75, 0.0]]]
    )
    empty = fractions_within_questions(np.zeros((2, 3)), [slice(0, 3)])
    np.testing.assert_array_equal(empty, 0.0)


def test_schema_round_trips_through_a_plain_dict():
    rebuilt = Schema.from_dict(decals_dr5_schema.to_dict())
    assert rebuilt == decals_dr5_schema


def test_inconsistent_schemas_are_rejected():
    with pytest.raises(SchemaError, match="unknown answer"):
        Schema.from_pairs("bad", {"q": ["a", "b"]}, {"q": "q_c"})
    with pytest.raises(SchemaError, match="at least 2"):
        Schema.from_pairs("bad", {"q": ["a"]}, {"q": None})
    with pytest.raises(SchemaError, match="cycle"):
        Schema.from_pairs("bad", {"p": ["a", "b"], "q": ["a", "b"]}, {"p": "q_a", "q": "p_a"})
    with pytest.raises(SchemaError, match="no question"):
        decals_dr5_schema.get_question("nope")


def test_schema_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, zoobot.schemas; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
