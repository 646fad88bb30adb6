"""Decision trees of Galaxy Zoo questions: questions, answers and their dependencies.

Pure Python and numpy (no torch), so that services which only aggregate votes can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from zoobot.errors import SchemaError

__all__ = ["Answer", "Question", "Schema", "fractions_within_questions"]


def fractions_within_questions(counts: np.ndarray, question_slices: Sequence[slice]) -> np.ndarray:
    """Normalise counts (or Dirichlet concentrations) within each question's answers.

    Args:
        counts: [..., n_answers] non-negative values, any leading axes.
        question_slices: one slice of the last axis per question.

    Returns:
        Float64 fractions of the same shape; 0 across a question whose values sum to 0.
    """
    counts = np.asarray(counts, dtype=np.float64)
    fractions = np.zeros_like(counts)
    starts = [answers.start or 0 for answers in question_slices]
    stops = [answers.stop for answers in question_slices]
    if starts == [0, *stops[:-1]] and stops[-1] == counts.shape[-1] and counts.size:
        # contiguous questions covering every answer (every schema's layout): one pass each
        totals = np.add.reduceat(counts, starts, axis=-1)
        totals = np.repeat(totals, np.subtract(stops, starts), axis=-1)
        np.divide(counts, totals, out=fractions, where=totals > 0)
        return fractions
    for answers in question_slices:
        totals = counts[..., answers].sum(axis=-1, keepdims=True)
        np.divide(counts[..., answers], totals, out=fractions[..., answers], where=totals > 0)
    return fractions


@dataclass(frozen=True)
class Answer:
    """One answer of a question.

    Attributes:
        name: the label column, ``<question>_<answer>``, e.g. ``smooth-or-featured_smooth``.
        text: the answer's own slug, e.g. ``smooth``.
    """

    name: str
    text: str


@dataclass(frozen=True)
class Question:
    """One question of a decision tree with its answers, in a fixed order."""

    name: str
    answers: tuple[Answer, ...]

    @property
    def label_cols(self) -> list[str]:
        """The vote-count columns of this question's answers."""
        return [answer.name for answer in self.answers]

    @property
    def total_votes_col(self) -> str:
        """The column that holds the number of volunteers asked this question."""
        return f"{self.name}_total-votes"


@dataclass(frozen=True)
class Schema:
    """A decision tree: questions in order, and the answer each question is asked after.

    Args:
        name: a short identifier, e.g. ``decals_dr5``.
        questions: the questions, in the order their answers appear in ``label_cols``.
        dependencies: question name -> label column of the answer that leads to it, or None when the
            question is always asked.
        panoptes_mapping: (Panoptes task, answer index) -> label column, for trees that come from a
            Panoptes workflow definition.

    Raises:
        SchemaError: when names repeat, a question has fewer than two answers, a dependency names an
            unknown question or answer, or dependencies form a cycle.
    """

    name: str
    questions: tuple[Question, ...]
    dependencies: Mapping[str, str | None]
    panoptes_mapping: Mapping[tuple[str, int], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()

    @classmethod
    def from_pairs(
        cls,
        name: str,
        pairs: Mapping[str, Sequence[str]],
        dependencies: Mapping[str, str | None],
        panoptes_mapping: Mapping[tuple[str, int], str] | None = None,
    ) -> Schema:
        """Build a schema from ``{question: [answer slug, ...]}`` and a dependency map.

        Args:
            name: the schema's identifier.
            pairs: question name -> answer slugs, in order.
            dependencies: question name -> parent label column (or None).
            panoptes_mapping: optional (task, answer index) -> label column.

        Returns:
            The schema.
        """
        questions = tuple(
            Question(q, tuple(Answer(f"{q}_{a}", a) for a in answers))
            for q, answers in pairs.items()
        )
        return cls(
            name=name,
            questions=questions,
            dependencies=dict(dependencies),
            panoptes_mapping=dict(panoptes_mapping or {}),
        )

    def _validate(self) -> None:
        names = [q.name for q in self.questions]
        if len(set(names)) != len(names):
            raise SchemaError(f"schema {self.name!r}: question names repeat: {names}")
        columns = self.label_cols
        if len(set(columns)) != len(columns):
            raise SchemaError(f"schema {self.name!r}: label columns repeat")
        for question in self.questions:
            if len(question.answers) < 2:
                raise SchemaError(
                    f"schema {self.name!r}: question {question.name!r} needs at least 2 answers"
                )
        missing = set(names) - set(self.dependencies)
        if missing:
            raise SchemaError(f"schema {self.name!r}: no dependency given for {sorted(missing)}")
        for question, parent in self.dependencies.items():
            if question not in names:
                raise SchemaError(
                    f"schema {self.name!r}: dependency for unknown question {question!r}"
                )
            if parent is not None and parent not in columns:
                raise SchemaError(
                    f"schema {self.name!r}: question {question!r} "
                    f"depends on unknown answer {parent!r}"
                )
        for question in names:
            self._ancestry(question)
        unknown = set(self.panoptes_mapping.values()) - set(columns)
        if unknown:
            raise SchemaError(
                f"schema {self.name!r}: Panoptes mapping names unknown answers {sorted(unknown)}"
            )

    def _ancestry(self, question: str) -> list[str]:
        """Label columns from the question's parent answer up to the root."""
        chain: list[str] = []
        parent = self.dependencies[question]
        while parent is not None:
            if parent in chain:
                raise SchemaError(f"schema {self.name!r}: dependency cycle through {parent!r}")
            chain.append(parent)
            parent = self.dependencies[self.question_of(parent).name]
        return chain

    def to_dict(self) -> dict[str, Any]:
        """A plain, YAML- and JSON-safe description that :meth:`from_dict` rebuilds."""
        return {
            "name": self.name,
            "pairs": {q.name: [a.text for a in q.answers] for q in self.questions},
            "dependencies": dict(self.dependencies),
            "panoptes_mapping": [[t, i, col] for (t, i), col in self.panoptes_mapping.items()],
        }

    @classmethod
    def from_dict(cls, description: Mapping[str, Any]) -> Schema:
        """Rebuild a schema from :meth:`to_dict` output."""
        mapping = {(t, int(i)): col for t, i, col in description.get("panoptes_mapping", [])}
        return cls.from_pairs(
            description["name"], description["pairs"], description["dependencies"], mapping
        )

    @property
    def label_cols(self) -> list[str]:
        """Every answer's vote-count column, question by question."""
        return [answer.name for question in self.questions for answer in question.answers]

    @property
    def question_answer_pairs(self) -> dict[str, list[str]]:
        """Zoobot 2.x's form of the tree: question -> answer suffixes (``"_smooth"``)."""
        return {q.name: [f"_{answer.text}" for answer in q.answers] for q in self.questions}

    @property
    def question_index_groups(self) -> list[tuple[int, int]]:
        """Zoobot 2.x's (first, last) answer index of each question, both inclusive."""
        return [(part.start, part.stop - 1) for part in self.question_slices]

    @property
    def question_names(self) -> list[str]:
        """The question names, in order."""
        return [question.name for question in self.questions]

    @property
    def question_slices(self) -> list[slice]:
        """For each question, the slice of ``label_cols`` that holds its answers."""
        slices, start = [], 0
        for question in self.questions:
            slices.append(slice(start, start + len(question.answers)))
            start += len(question.answers)
        return slices

    @property
    def question_index(self) -> np.ndarray:
        """For each label column, the index of its question. Shape [n_answers]."""
        return np.repeat(np.arange(len(self.questions)), [len(q.answers) for q in self.questions])

    def get_question(self, name: str) -> Question:
        """The question called ``name``.

        Raises:
            SchemaError: if there is none.
        """
        for question in self.questions:
            if question.name == name:
                return question
        raise SchemaError(
            f"schema {self.name!r} has no question {name!r}; it has {self.question_names}"
        )

    def question_of(self, label_col: str) -> Question:
        """The question that a label column answers.

        Raises:
            SchemaError: if no question has that answer.
        """
        for question in self.questions:
            if label_col in question.label_cols:
                return question
        raise SchemaError(f"schema {self.name!r} has no answer column {label_col!r}")

    def vote_fractions(self, counts: np.ndarray) -> np.ndarray:
        """Vote counts -> fractions within each question (0 where a question got no votes).

        Also normalises Dirichlet concentrations into each posterior sample's expected fractions.

        Args:
            counts: [..., n_answers] vote counts (or concentrations) in ``label_cols`` order,
                e.g. [n_galaxies, n_answers] or [n_galaxies, n_samples, n_answers].

        Returns:
            Fractions of the same shape.
        """
        return fractions_within_questions(counts, self.question_slices)

    def answer_reached_probability(self, fractions: np.ndarray) -> np.ndarray:
        """P(a volunteer reaches and picks each answer) from per-question vote fractions.

        P(answer reached) = P(answer | question asked) x P(parent answer reached), recursively.

        Args:
            fractions: [n_galaxies, n_answers] fractions within each question.

        Returns:
            [n_galaxies, n_answers] probabilities.
        """
        fractions = np.asarray(fractions, dtype=float)
        asked = self.question_asked_probability(fractions)
        return fractions * asked[:, self.question_index]

    def question_asked_probability(self, fractions: np.ndarray) -> np.ndarray:
        """P(each question is asked) from per-question vote fractions.

        Args:
            fractions: [n_galaxies, n_answers] fractions within each question.

        Returns:
            [n_galaxies, n_questions] probabilities.
        """
        fractions = np.asarray(fractions, dtype=float)
        columns = {name: i for i, name in enumerate(self.label_cols)}
        asked = np.ones((fractions.shape[0], len(self.questions)))
        for q, question in enumerate(self.questions):
            for parent in self._ancestry(question.name):
                asked[:, q] *= fractions[:, columns[parent]]
        return asked
