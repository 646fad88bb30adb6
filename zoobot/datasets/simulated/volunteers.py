"""Simulated Galaxy Zoo volunteers: they walk the decision tree and vote, with noise and skill.

A volunteer starts at the always-asked questions and is asked a follow-up question only after
choosing its parent answer, so a follow-up question's total votes equal the votes of its parent
answer, exactly as in real Galaxy Zoo data. Two kinds of noise:

- crowd over-dispersion: the fractions a galaxy's crowd of volunteers converges to scatter around
  the true probabilities as ``p_galaxy ~ Dirichlet(kappa * p_true)`` (per question), which makes
  each question's vote counts Dirichlet-multinomial, the likelihood Zoobot's loss assumes;
- skill: a volunteer with skill ``s`` answers from ``s * p + (1 - s) / n_answers`` (``s = 1`` is
  perfect, ``s = 0`` answers at random).

``answer_probabilities`` (re-exported here) gives the true probabilities from a frame of truths.
"""

from __future__ import annotations

import numpy as np

from zoobot.datasets.simulated.answers import answer_probabilities
from zoobot.errors import SchemaError
from zoobot.schemas import Schema, decals_dr5_schema

__all__ = [
    "answer_probabilities",
    "ask_volunteers",
    "classify",
    "perturb_probabilities",
    "walk_order",
]


def walk_order(schema: Schema) -> list[int]:
    """Question indices in the order a volunteer meets them: schema order, parents before children.

    Args:
        schema: the decision tree.

    Returns:
        Indices into ``schema.questions``.
    """
    names = schema.question_names
    parent_question = {
        name: (None if parent is None else schema.question_of(parent).name)
        for name, parent in schema.dependencies.items()
    }
    order: list[int] = []
    placed: set[str] = set()
    while len(order) < len(names):
        for i, name in enumerate(names):
            if name not in placed and (
                parent_question[name] in placed or parent_question[name] is None
            ):
                order.append(i)
                placed.add(name)
                break
    return order


def _check_probabilities(probabilities: np.ndarray, schema: Schema) -> np.ndarray:
    """Validate [n, n_answers] probabilities and renormalise each question. Returns a float copy."""
    p = np.array(probabilities, dtype=float, ndmin=2)
    n_answers = len(schema.label_cols)
    if p.ndim != 2 or p.shape[1] != n_answers:
        raise SchemaError(
            f"probabilities have shape {np.shape(probabilities)} but schema {schema.name!r} has "
            f"{n_answers} answers; pass [n_galaxies, {n_answers}] in schema.label_cols order"
        )
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and >= 0")
    for answers in schema.question_slices:
        totals = p[:, answers].sum(axis=1, keepdims=True)
        if np.any(totals <= 0):
            raise ValueError("every question needs a positive total probability")
        p[:, answers] /= totals
    return p


def _apply_skill(p: np.ndarray, skill: float, schema: Schema) -> np.ndarray:
    if not 0.0 <= skill <= 1.0:
        raise ValueError(f"skill must lie in [0, 1], got {skill}")
    out = p.copy()
    for answers in schema.question_slices:
        k = answers.stop - answers.start
        out[:, answers] = skill * p[:, answers] + (1.0 - skill) / k
    return out


def perturb_probabilities(
    probabilities: np.ndarray,
    rng: np.random.Generator,
    kappa: float,
    schema: Schema = decals_dr5_schema,
) -> np.ndarray:
    """Draw the fractions one galaxy's crowd converges to: ``Dirichlet(kappa * p)`` per question.

    Args:
        probabilities: [n_galaxies, n_answers] true answer probabilities.
        rng: the random generator.
        kappa: concentration (> 0); smaller means more disagreement between crowds (5-20 is
            typical).
        schema: the decision tree.

    Returns:
        [n_galaxies, n_answers] perturbed probabilities, each question summing to 1.

    Raises:
        SchemaError: if the probabilities do not match the schema.
        ValueError: if kappa is not positive or the probabilities are invalid.
    """
    if not kappa > 0:
        raise ValueError(f"kappa must be > 0, got {kappa}")
    p = _check_probabilities(probabilities, schema)
    out = np.empty_like(p)
    for answers in schema.question_slices:
        # Dirichlet via normalised gammas, vectorised over galaxies.
        gammas = rng.standard_gamma(np.maximum(kappa * p[:, answers], 1e-3))
        out[:, answers] = gammas / gammas.sum(axis=1, keepdims=True)
    return out


def classify(
    probabilities: np.ndarray,
    rng: np.random.Generator,
    schema: Schema = decals_dr5_schema,
    skill: float = 1.0,
) -> dict[str, int]:
    """One volunteer classifies one galaxy by walking the tree.

    Args:
        probabilities: [n_answers] (or [1, n_answers]) answer probabilities of the galaxy.
        rng: the random generator.
        schema: the decision tree.
        skill: the volunteer's skill in [0, 1] (1 answers from ``probabilities`` exactly).

    Returns:
        Question name -> index of the chosen answer within the question, for the questions
        reached, in the order asked (``walk_order``).

    Raises:
        SchemaError: if the probabilities do not match the schema.
        ValueError: if the probabilities or the skill are invalid.
    """
    p = _check_probabilities(probabilities, schema)
    if p.shape[0] != 1:
        raise ValueError(f"classify takes one galaxy's probabilities, got {p.shape[0]} rows")
    p = _apply_skill(p, skill, schema)[0]
    chosen_cols: set[str] = set()
    answers_given: dict[str, int] = {}
    slices = schema.question_slices
    for q in walk_order(schema):
        question = schema.questions[q]
        parent = schema.dependencies[question.name]
        if parent is not None and parent not in chosen_cols:
            continue
        answer = int(rng.choice(len(question.answers), p=p[slices[q]]))
        answers_given[question.name] = answer
        chosen_cols.add(question.answers[answer].name)
    return answers_given


def ask_volunteers(
    probabilities: np.ndarray,
    n_volunteers: int | np.ndarray,
    rng: np.random.Generator,
    schema: Schema = decals_dr5_schema,
    kappa: float | None = 10.0,
    skill: float = 1.0,
) -> np.ndarray:
    """Vote counts from ``n_volunteers`` more volunteers per galaxy, vectorised over galaxies.

    Args:
        probabilities: [n_galaxies, n_answers] true answer probabilities (``answer_probabilities``).
        n_volunteers: volunteers per galaxy, one int for all or an [n_galaxies] array (>= 0).
        rng: the random generator.
        schema: the decision tree.
        kappa: crowd over-dispersion (see ``perturb_probabilities``); None for none (multinomial
            votes).
        skill: every volunteer's skill in [0, 1].

    Returns:
        [n_galaxies, n_answers] int vote counts in ``schema.label_cols`` order. The always-asked
        questions total ``n_volunteers``; each follow-up question totals its parent answer's count.

    Raises:
        SchemaError: if the probabilities do not match the schema.
        ValueError: if a volunteer count is negative or the other arguments are invalid.
    """
    p = _check_probabilities(probabilities, schema)
    n_galaxies = p.shape[0]
    volunteers = np.broadcast_to(np.asarray(n_volunteers), (n_galaxies,)).astype(np.int64)
    if np.any(volunteers < 0):
        raise ValueError("n_volunteers must be >= 0")
    if kappa is not None:
        p = perturb_probabilities(p, rng, kappa, schema)
    p = _apply_skill(p, skill, schema)
    columns = {name: i for i, name in enumerate(schema.label_cols)}
    counts = np.zeros(p.shape, dtype=np.int64)
    slices = schema.question_slices
    for q in walk_order(schema):
        parent = schema.dependencies[schema.questions[q].name]
        asked = volunteers if parent is None else counts[:, columns[parent]]
        counts[:, slices[q]] = rng.multinomial(asked, p[:, slices[q]])
    return counts
