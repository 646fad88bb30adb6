"""Retirement decisions: stop collecting votes on a galaxy when more would add little.

A galaxy is retired, with its reason, when (checked in this order):

- ``control``: it is in the random control share and has the fixed rule's votes (Galaxy Zoo's 40),
  so that catalogues can be debiased against the adaptive rule (its selection flag says so);
- ``max_votes``: it has the maximum votes;
- ``decided``: it has at least the minimum votes and every question it reaches (P(asked) >=
  ``reach``) has a leading answer ``decided_z`` posterior standard deviations ahead;
- ``information``: it has at least the minimum votes and one more volunteer's walk would tell less
  than ``information_threshold`` nats about its answer fractions.

Control galaxies only ever retire by the fixed rule. No galaxy retires below ``min_votes``.
Arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from prioritiser.posterior import (
    CombinedPosterior,
    decided_questions,
    tree_next_vote_information,
)

if TYPE_CHECKING:
    from zoobot import Schema

__all__ = ["REASONS", "RetirementRule", "control_flags", "retirement_reasons"]

REASONS = ("active", "control", "max_votes", "decided", "information")
"""Reason codes: index 0 means not retired."""


@dataclass(frozen=True)
class RetirementRule:
    """When to retire.

    Attributes:
        min_votes: adaptive retirement needs at least this many votes.
        max_votes: always retire at this many votes.
        information_threshold: retire when the next volunteer would add fewer nats than this.
        decided_z: a question is decided when its leader leads by this many posterior sd.
        reach: questions asked with at least this probability must be decided.
        control_share: fraction of galaxies kept on the fixed rule.
        fixed_votes: the fixed rule's votes (Galaxy Zoo: 40).
    """

    min_votes: int = 3
    max_votes: int = 40
    information_threshold: float = 0.02
    decided_z: float = 2.0
    reach: float = 0.25
    control_share: float = 0.0
    fixed_votes: int = 40

    def __post_init__(self) -> None:
        if not 0 <= self.min_votes <= self.max_votes or self.fixed_votes < max(self.min_votes, 1):
            raise ValueError(
                "need 0 <= min_votes <= max_votes and fixed_votes >= max(min_votes, 1), got "
                f"min_votes={self.min_votes}, max_votes={self.max_votes}, "
                f"fixed_votes={self.fixed_votes}"
            )
        if not 0.0 <= self.control_share <= 1.0 or not 0.0 <= self.reach <= 1.0:
            raise ValueError("control_share and reach must lie in [0, 1]")


def control_flags(n_galaxies: int, share: float, seed: int) -> np.ndarray:
    """A random control selection of ``share`` of the galaxies (reproducible from ``seed``)."""
    return np.random.default_rng(seed).random(n_galaxies) < share


def retirement_reasons(
    posterior: CombinedPosterior,
    votes: np.ndarray,
    is_control: np.ndarray,
    rule: RetirementRule,
    schema: Schema,
) -> np.ndarray:
    """Which galaxies to retire now, and why.

    Args:
        posterior: the combined posterior (``prioritiser.posterior.combine``).
        votes: [n_galaxies] classifications received.
        is_control: [n_galaxies] bool, in the control share.
        rule: the thresholds.
        schema: the decision tree.

    Returns:
        [n_galaxies] int codes into :data:`REASONS` (0: keep collecting votes).
    """
    votes = np.asarray(votes)
    is_control = np.asarray(is_control, dtype=bool)
    if votes.shape != posterior.total.shape[:1] or is_control.shape != votes.shape:
        raise ValueError(
            f"votes and is_control must be [{posterior.total.shape[0]}], got {votes.shape} and "
            f"{is_control.shape}"
        )
    asked = schema.question_asked_probability(posterior.mean)
    undecided = ~decided_questions(posterior, schema, rule.decided_z) & (asked >= rule.reach)
    information = tree_next_vote_information(posterior, schema)
    enough = votes >= rule.min_votes
    reasons = np.zeros(votes.shape, dtype=np.int8)
    adaptive = ~is_control
    checks = [
        (is_control & (votes >= rule.fixed_votes), "control"),
        (adaptive & (votes >= rule.max_votes), "max_votes"),
        (adaptive & enough & ~undecided.any(axis=1), "decided"),
        (adaptive & enough & (information < rule.information_threshold), "information"),
    ]
    for mask, reason in checks:
        reasons[(reasons == 0) & mask] = REASONS.index(reason)
    return reasons
