"""Subjects and volunteers from zoobot's galaxy simulator (``zoobot.datasets.simulated``).

Each simulated subject is one galaxy drawn by ``draw_truths`` and rendered by ``render_rgb``;
volunteers walk the DR5 tree with ``classify`` on that galaxy's answer probabilities, perturbed
once per galaxy (crowd over-dispersion, ``perturb_probabilities``), so the vote counts a subject
collects are Dirichlet-multinomial as in real Galaxy Zoo data. The simulator's answers
(question name -> answer index in ``decals_dr5_schema``) become workflow annotations through
the schema's ``panoptes_mapping``, which maps (task, workflow answer index) -> label column.

The simulator (galsim, astropy) is imported only when this model is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from panoptes_sync.emulator.answers import (
    RARE_FEATURE_PROBABILITY,
    SIMULATED_INDEX_KEY,
    png_bytes,
    sky_metadata,
    walk_tree,
)
from zoobot.schemas import DECALS_DR5_QUESTION_NAMES, decals_dr5_schema

__all__ = ["SimulatedGalaxyAnswerModel"]

#: Crowd over-dispersion of each galaxy's vote fractions (5-20 is typical of Galaxy Zoo).
CROWD_KAPPA = 10.0
#: Galaxies are drawn in seeded chunks of this size, so galaxy i never depends on how many exist.
CHUNK = 64


class SimulatedGalaxyAnswerModel:
    """Galaxy images and volunteer answers from zoobot's simulator.

    Galaxy ``i`` (a seeded subject's ``#simulated_index``) is row ``i % 64`` of the seeded chunk
    ``i // 64`` of ``draw_truths``; subjects without that key (uploaded through the API) get a
    galaxy drawn from their subject id.

    Args:
        tasks: the workflow's tasks (GZ DECaLS DR5: T0..T11).
        first_task: the workflow's first task.
        seed: the emulator seed.
        image_size: side of the subject images in pixels.
    """

    def __init__(
        self, tasks: Mapping[str, Any], first_task: str, seed: int, image_size: int
    ) -> None:
        from zoobot.datasets import simulated

        self.simulated = simulated
        self.tasks = dict(tasks)
        self.first_task = first_task
        self.seed = seed
        self.image_size = image_size
        self.schema = decals_dr5_schema
        # label column -> workflow answer index; workflow task -> question name.
        self._answer_index = {col: i for (_, i), col in self.schema.panoptes_mapping.items()}
        self._question_of_task = dict(DECALS_DR5_QUESTION_NAMES)
        self._chunks: dict[int, tuple[Any, np.ndarray]] = {}
        self._crowd: dict[int, np.ndarray] = {}
        self._columns: dict[int, tuple[list[float], list[str]]] = {}

    def _chunk(self, chunk: int) -> tuple[Any, np.ndarray]:
        """Truth rows and [CHUNK, n_answers] true answer probabilities of one chunk."""
        if chunk not in self._chunks:
            rng = np.random.default_rng([self.seed, 13, chunk])
            truths = self.simulated.draw_truths(CHUNK, rng)
            self._chunks[chunk] = (truths, self.simulated.answer_probabilities(truths, self.schema))
        return self._chunks[chunk]

    def subject_metadata(self, index: int) -> dict[str, Any]:
        """GZ-like hidden metadata, plus the galaxy's redshift and morphology."""
        chunk = index // CHUNK
        if chunk not in self._columns:  # whole columns once: a row lookup per subject is slow
            truths, _ = self._chunk(chunk)
            self._columns[chunk] = (
                truths["redshift"].astype(float).tolist(),
                truths["morphology"].astype(str).tolist(),
            )
        redshifts, morphologies = self._columns[chunk]
        metadata = sky_metadata(self.seed, index)
        metadata.update(
            {"!redshift": redshifts[index % CHUNK], "!morphology": morphologies[index % CHUNK]}
        )
        return metadata

    def subject_image(self, index: int) -> bytes:
        """The rendered galaxy as PNG."""
        truths, _ = self._chunk(index // CHUNK)
        row = truths.iloc[index % CHUNK].to_dict()
        return png_bytes(self.simulated.render_rgb(row, self.image_size))

    def probabilities(self, subject_id: int, metadata: Mapping[str, Any]) -> np.ndarray:
        """[n_answers] crowd answer probabilities of the subject's galaxy (schema order)."""
        if subject_id not in self._crowd:
            index = metadata.get(SIMULATED_INDEX_KEY)
            if isinstance(index, int) and index >= 0:
                p_true = self._chunk(index // CHUNK)[1][index % CHUNK : index % CHUNK + 1]
            else:
                truths = self.simulated.draw_truths(
                    1, np.random.default_rng([self.seed, 17, subject_id])
                )
                p_true = self.simulated.answer_probabilities(truths, self.schema)
            rng = np.random.default_rng([self.seed, 19, subject_id])
            crowd = self.simulated.perturb_probabilities(p_true, rng, CROWD_KAPPA, self.schema)
            self._crowd[subject_id] = crowd[0]
        return self._crowd[subject_id]

    def annotate(self, probabilities: Any, rng: np.random.Generator) -> list[dict[str, Any]]:
        """One volunteer's walk, answers from the simulator mapped to workflow indices."""
        given = self.simulated.classify(probabilities, rng, self.schema)
        per_task: dict[str, np.ndarray] = {}
        for task_key, task in self.tasks.items():
            n = len(task.get("answers") or [])
            question = self._question_of_task.get(task_key)
            if task.get("type") == "multiple":
                per_task[task_key] = np.full(n, RARE_FEATURE_PROBABILITY)
            elif question in given:
                column = self._answer_column(question, given[question])
                per_task[task_key] = np.eye(n)[self._answer_index[column]]
        return walk_tree(self.tasks, self.first_task, per_task, rng)

    def _answer_column(self, question_name: str, index: int) -> str:
        question = self.schema.questions[self.schema.question_names.index(question_name)]
        return question.answers[index].name
