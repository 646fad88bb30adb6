"""What simulated subjects look like and how simulated volunteers answer the decision tree.

Everything the volunteer simulation needs from a galaxy model sits behind ``AnswerModel``:
``subject_content`` (image and metadata of a new simulated subject), ``probabilities`` (each task's
answer probabilities for a subject) and ``annotate`` (one volunteer's walk down the tree). The
built-in ``RandomTreeAnswerModel`` draws seeded per-subject probabilities and seeded blob images;
a model backed by the galaxy simulator can replace it without touching the emulator.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
from PIL import Image

__all__ = [
    "SIMULATED_INDEX_KEY",
    "AnswerModel",
    "RandomTreeAnswerModel",
    "png_bytes",
    "sky_metadata",
    "walk_tree",
]

#: Subject metadata key naming the simulated galaxy a subject shows.
SIMULATED_INDEX_KEY = "#simulated_index"
#: Probability that a volunteer ticks each rare feature of a ``multiple`` task.
RARE_FEATURE_PROBABILITY = 0.08


class AnswerModel(Protocol):
    """How subjects look and how volunteers answer."""

    def subject_metadata(self, index: int) -> dict[str, Any]:
        """Metadata of the ``index``-th simulated subject (``!`` keys: hidden from volunteers)."""
        ...

    def subject_image(self, index: int) -> bytes:
        """PNG image of the ``index``-th simulated subject (rendered when first downloaded)."""
        ...

    def probabilities(self, subject_id: int, metadata: Mapping[str, Any]) -> Any:
        """What a volunteer answers from for this subject (opaque; passed back to ``annotate``)."""
        ...

    def annotate(self, probabilities: Any, rng: np.random.Generator) -> list[dict[str, Any]]:
        """One volunteer's annotations ``[{"task": "T0", "value": index}, ...]``."""
        ...


def png_bytes(rgb: np.ndarray) -> bytes:
    """Encode an [H, W, 3] uint8 image as PNG."""
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def iau_name(ra: float, dec: float) -> str:
    """IAU-style name ``JHHMMSS.ss+DDMMSS.s`` of a sky position in degrees."""
    hours = ra / 15.0
    h, m = int(hours), int(hours * 60) % 60
    s = (hours * 3600) % 60
    sign = "+" if dec >= 0 else "-"
    d_abs = abs(dec)
    d, dm = int(d_abs), int(d_abs * 60) % 60
    ds = (d_abs * 3600) % 60
    return f"J{h:02d}{m:02d}{s:05.2f}{sign}{d:02d}{dm:02d}{ds:04.1f}"


def sky_metadata(seed: int, index: int) -> dict[str, Any]:
    """Seeded GZ-like metadata of a simulated subject: hidden sky position and name."""
    rng = np.random.default_rng([seed, 5, index])
    ra, dec = float(rng.uniform(0, 360)), float(rng.uniform(-20, 60))
    return {
        "!iauname": iau_name(ra, dec),
        "!ra": ra,
        "!dec": dec,
        "#upload_date": "2018-12-07",
        SIMULATED_INDEX_KEY: index,
    }


def walk_tree(
    tasks: Mapping[str, Any],
    first_task: str,
    probabilities: Mapping[str, np.ndarray],
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    """Walk a workflow's tasks from ``first_task``, sampling each answer from ``probabilities``.

    ``single`` tasks give an answer index and follow that answer's ``next``; ``multiple`` tasks give
    a (possibly empty) list of indices, each ticked with its own probability, and follow the task's
    ``next``. Only the tasks on the path taken appear, in the order answered.

    Args:
        tasks: the workflow's ``tasks``.
        first_task: the entry task.
        probabilities: per task, answer probabilities (single: sums to 1; multiple: per answer).
        rng: the volunteer's random generator.

    Returns:
        The annotations.
    """
    annotations: list[dict[str, Any]] = []
    key: str | None = first_task
    visited: set[str] = set()
    while key and key in tasks and key not in visited:
        visited.add(key)
        task = tasks[key]
        answers = task.get("answers") or []
        p = np.asarray(probabilities.get(key, np.full(len(answers), 1.0 / max(len(answers), 1))))
        if task.get("type") == "multiple":
            ticked = [int(i) for i in np.flatnonzero(rng.random(len(answers)) < p)]
            annotations.append({"task": key, "value": ticked})
            key = task.get("next")
        elif answers:
            index = int(rng.choice(len(answers), p=p / p.sum()))
            annotations.append({"task": key, "value": index})
            key = answers[index].get("next")
        else:
            key = task.get("next")
    return annotations


class RandomTreeAnswerModel:
    """Seeded per-subject answer probabilities (Dirichlet) and blob images.

    Args:
        tasks: the workflow's tasks.
        first_task: the workflow's first task.
        seed: the emulator seed.
        image_size: side of the PNG images in pixels.
        concentration: Dirichlet concentration of each subject's probabilities (low: confident).
    """

    def __init__(
        self,
        tasks: Mapping[str, Any],
        first_task: str,
        seed: int,
        image_size: int,
        concentration: float = 0.7,
    ) -> None:
        self.tasks = dict(tasks)
        self.first_task = first_task
        self.seed = seed
        self.image_size = image_size
        self.concentration = concentration
        self._cache: dict[int, dict[str, np.ndarray]] = {}

    def subject_metadata(self, index: int) -> dict[str, Any]:
        """GZ-like hidden metadata."""
        return sky_metadata(self.seed, index)

    def subject_image(self, index: int) -> bytes:
        """A blurred elliptical blob with noise."""
        rng = np.random.default_rng([self.seed, 7, index])
        size = self.image_size
        y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2
        angle = rng.uniform(0, np.pi)
        axis_ratio = rng.uniform(0.3, 1.0)
        radius = rng.uniform(0.08, 0.25) * size
        u = x * np.cos(angle) + y * np.sin(angle)
        v = (-x * np.sin(angle) + y * np.cos(angle)) / axis_ratio
        light = np.exp(-(u**2 + v**2) / (2 * radius**2))  # [size, size]
        colour = rng.uniform(0.6, 1.0, size=3)
        pixels = light[..., None] * colour + rng.normal(0, 0.03, size=(size, size, 3))
        return png_bytes((np.clip(pixels, 0, 1) * 255).astype(np.uint8))

    def probabilities(self, subject_id: int, metadata: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Dirichlet draws per ``single`` task, seeded by the subject id."""
        if subject_id not in self._cache:
            rng = np.random.default_rng([self.seed, 11, subject_id])
            out: dict[str, np.ndarray] = {}
            for key, task in self.tasks.items():
                n = len(task.get("answers") or [])
                if task.get("type") == "multiple":
                    out[key] = np.full(n, RARE_FEATURE_PROBABILITY)
                elif n:
                    out[key] = rng.dirichlet(np.full(n, self.concentration))
            self._cache[subject_id] = out
        return self._cache[subject_id]

    def annotate(
        self, probabilities: Mapping[str, np.ndarray], rng: np.random.Generator
    ) -> list[dict[str, Any]]:
        """One walk down the tree."""
        return walk_tree(self.tasks, self.first_task, probabilities, rng)
