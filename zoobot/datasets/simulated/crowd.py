"""A persistent crowd of simulated volunteers, each with a skill and a bias per question.

Each volunteer has, per question q, a skill ``s_q`` and a bias distribution ``b_q`` over its
answers: shown a galaxy whose answer fractions are p, they draw the "true" answer i ~ p and say it
with probability s_q, otherwise they say an answer drawn from b_q. Their confusion matrix is
therefore ``pi_q = s_q I + (1 - s_q) 1 b_q^T``. Kinds:

- ``good``: skill ~ Beta(18, 2) per question (about 0.9), uniform bias;
- ``careless``: skill ~ Beta(4, 4) (about 0.5), uniform bias;
- ``spammer``: skill 0, uniform bias (clicks at random);
- ``artifact_happy``: a good volunteer who, on the first question, says "artifact" (the last
  answer) instead of the true answer 40 % of the time (GZ DECaLS saw such volunteers).

Votes walk the tree as in ``classify``: a follow-up question is asked only after its parent answer
was said.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zoobot.datasets.simulated.volunteers import walk_order
from zoobot.schemas import Schema, decals_dr5_schema

__all__ = ["KINDS", "Crowd", "crowd_classify", "make_crowd"]

KINDS = ("good", "careless", "spammer", "artifact_happy")
DEFAULT_SHARES = {"good": 0.75, "careless": 0.1, "spammer": 0.05, "artifact_happy": 0.1}


@dataclass(frozen=True)
class Crowd:
    """Volunteers' skills and biases.

    Attributes:
        kind: [n_volunteers] index into :data:`KINDS`.
        skill: [n_volunteers, n_questions] probability of saying the true answer.
        bias: [n_volunteers, n_answers] per question, the distribution of other answers.
    """

    kind: np.ndarray
    skill: np.ndarray
    bias: np.ndarray

    def confusion(self, question: int, schema: Schema = decals_dr5_schema) -> np.ndarray:
        """[n_volunteers, K, K] the true confusion matrices on ``question`` (rows: true answer)."""
        answers = schema.question_slices[question]
        k = answers.stop - answers.start
        s = self.skill[:, question, None, None]
        return s * np.eye(k) + (1 - s) * self.bias[:, None, answers]


def make_crowd(
    n_volunteers: int,
    rng: np.random.Generator,
    schema: Schema = decals_dr5_schema,
    shares: dict[str, float] | None = None,
) -> Crowd:
    """Draw a crowd.

    Args:
        n_volunteers: how many.
        rng: the random generator.
        schema: the decision tree.
        shares: kind -> share of the crowd (default 75 % good, 10 % careless, 5 % spammers,
            10 % artifact-happy); must sum to 1.

    Returns:
        The crowd.

    Raises:
        ValueError: for unknown kinds or shares that do not sum to 1.
    """
    shares = DEFAULT_SHARES if shares is None else shares
    unknown = set(shares) - set(KINDS)
    if unknown or not np.isclose(sum(shares.values()), 1.0):
        raise ValueError(f"shares must use kinds {KINDS} and sum to 1, got {shares}")
    probabilities = [shares.get(k, 0.0) for k in KINDS]
    kind = rng.choice(len(KINDS), size=n_volunteers, p=probabilities)
    n_questions = len(schema.questions)
    skill = rng.beta(18, 2, size=(n_volunteers, n_questions))
    careless = kind == KINDS.index("careless")
    skill[careless] = rng.beta(4, 4, size=(careless.sum(), n_questions))
    skill[kind == KINDS.index("spammer")] = 0.0
    bias = np.zeros((n_volunteers, len(schema.label_cols)))
    for answers in schema.question_slices:
        bias[:, answers] = 1.0 / (answers.stop - answers.start)
    happy = kind == KINDS.index("artifact_happy")
    first = schema.question_slices[0]
    skill[happy, 0] = 0.6
    bias[np.ix_(happy, np.arange(first.start, first.stop))] = 0.0
    bias[happy, first.stop - 1] = 1.0
    return Crowd(kind=kind, skill=skill, bias=bias)


def _draw(p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One categorical draw per row of [n, K] probabilities."""
    cumulative = np.cumsum(p, axis=1)
    u = rng.random(p.shape[0])[:, None] * cumulative[:, -1:]
    return np.minimum((u > cumulative).sum(axis=1), p.shape[1] - 1)


def crowd_classify(
    fractions: np.ndarray,
    volunteers: np.ndarray,
    crowd: Crowd,
    rng: np.random.Generator,
    schema: Schema = decals_dr5_schema,
) -> np.ndarray:
    """Classifications, one per (galaxy fractions, volunteer) row, vectorised.

    Args:
        fractions: [n_clicks, n_answers] the answer fractions of each shown galaxy.
        volunteers: [n_clicks] the volunteer of each click.
        crowd: the crowd.
        rng: the random generator.
        schema: the decision tree.

    Returns:
        [n_clicks, n_questions] int answer index within each question, -1 where not asked.
    """
    n = fractions.shape[0]
    said = np.full((n, len(schema.questions)), -1, dtype=np.int64)
    columns = {name: i for i, name in enumerate(schema.label_cols)}
    slices = schema.question_slices
    for q in walk_order(schema):
        parent = schema.dependencies[schema.questions[q].name]
        if parent is None:
            asked = np.ones(n, dtype=bool)
        else:
            parent_q = int(schema.question_index[columns[parent]])
            asked = said[:, parent_q] == columns[parent] - slices[parent_q].start
        rows = np.flatnonzero(asked)
        if rows.size == 0:
            continue
        true = _draw(fractions[rows, slices[q]], rng)
        noise = _draw(crowd.bias[volunteers[rows], slices[q]], rng)
        honest = rng.random(rows.size) < crowd.skill[volunteers[rows], q]
        said[rows, q] = np.where(honest, true, noise)
    return said
