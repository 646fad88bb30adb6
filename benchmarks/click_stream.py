"""The volunteer-click benchmark's click stream: one arm, one seed (see volunteer_clicks.py).

Clicks arrive in sync windows of ``window`` clicks. At each window the Designator serves the
active (unretired) galaxies in priority order, ``step`` classifications each, to volunteers drawn
at random from the persistent crowd; then votes are aggregated, skills re-estimated (skill arms),
retirement decided and priorities refreshed. The model is retrained every ``retrain_every``
clicks on the previous survey plus the arm's votes, and every galaxy's catalogue estimate is
scored every ``eval_every`` clicks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from click_model import EnsembleModel
from scipy import sparse

from prioritiser.acquisition import bald
from prioritiser.posterior import CombinedPosterior, combine, tree_next_vote_information
from prioritiser.retirement import REASONS, RetirementRule, control_flags, retirement_reasons
from prioritiser.skill import SkillModel
from zoobot.datasets.simulated.crowd import Crowd, crowd_classify
from zoobot.schemas import Schema

ARMS = ("random_40", "mi_40", "kade", "swap", "combined")
"""(a) Galaxy Zoo's rule, (b) today's engine, (c) KaDE-like, (d) SWAP-like, (e) this issue."""

_SKILL_ARMS = ("swap", "combined")
_JEFFREYS = 0.5
_FLOOR = 1e-4


@dataclass(frozen=True)
class Survey:
    """The galaxies to classify and the previous survey the model starts from."""

    fractions: np.ndarray  # [n, n_answers] each galaxy's crowd answer fractions (the target)
    features: np.ndarray  # [n, n_features]
    pretrain_features: np.ndarray
    pretrain_counts: np.ndarray  # [n_pretrain, n_answers] raw votes
    pretrain_votes: tuple[np.ndarray, np.ndarray, np.ndarray]  # galaxy, volunteer, answers said


@dataclass(frozen=True)
class Protocol:
    """Sizes and thresholds shared by every arm."""

    budget: int
    window: int = 1000
    retrain_every: int = 10_000
    eval_every: int = 1000
    em_every: int = 5000
    kade_threshold: float = 0.8
    rule: RetirementRule = field(default_factory=RetirementRule)
    swap_rule: RetirementRule = field(default_factory=RetirementRule)
    n_members: int = 3
    reweight_previous: bool = False


@dataclass
class _State:
    n: int
    n_answers: int
    votes: np.ndarray = field(init=False)
    raw: np.ndarray = field(init=False)
    soft: np.ndarray = field(init=False)
    retired: np.ndarray = field(init=False)
    reason: np.ndarray = field(init=False)
    galaxy: list[np.ndarray] = field(default_factory=list)
    volunteer: list[np.ndarray] = field(default_factory=list)
    said: list[np.ndarray] = field(default_factory=list)
    evidence: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.votes = np.zeros(self.n, dtype=np.int64)
        self.raw = np.zeros((self.n, self.n_answers))
        self.soft = np.zeros((self.n, self.n_answers))
        self.retired = np.zeros(self.n, dtype=bool)
        self.reason = np.zeros(self.n, dtype=np.int8)


def _scatter(galaxy: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Sum rows of values [m, A] into their galaxies: [n, A]."""
    ones = np.ones(galaxy.size)
    matrix = sparse.csr_matrix((ones, (galaxy, np.arange(galaxy.size))), shape=(n, galaxy.size))
    return np.asarray(matrix @ values)


def one_hot(said: np.ndarray, schema: Schema) -> np.ndarray:
    """[m, n_questions] answers -> [m, n_answers] 0/1 votes (-1: not asked)."""
    out = np.zeros((said.shape[0], len(schema.label_cols)))
    for q, answers in enumerate(schema.question_slices):
        rows = np.flatnonzero(said[:, q] >= 0)
        out[rows, answers.start + said[rows, q]] = 1.0
    return out


def _evidence(
    skill: SkillModel, galaxy, volunteer, said, concentrations, own, schema, mode: str
) -> np.ndarray:
    """Soft counts of votes (``mode`` "evidence"), or skills updated from them.

    ``mode`` "learn" adds the votes to the skills online; "reestimate" does one EM step.

    ``own`` [m, A] is each vote's current evidence, removed from its galaxy's posterior so that a
    vote is judged against the others (leave one out).
    """
    out = np.zeros(own.shape)
    for q, answers in enumerate(schema.question_slices):
        rows = np.flatnonzero(said[:, q] >= 0)
        c = np.maximum(concentrations[galaxy[rows], answers] - own[rows, answers], _FLOOR)
        mean = c / c.sum(axis=1, keepdims=True)
        args = (q, volunteer[rows], said[rows, q], mean)
        if mode == "evidence":
            out[rows, answers] = skill.evidence(*args)
        else:
            getattr(skill, mode)(*args)
    return out


def _estimate(arm: str, state: _State, model_mean, posterior, schema) -> np.ndarray:
    """Every galaxy's catalogue answer fractions under the arm."""
    if arm == "combined":
        return posterior.mean
    counts = state.soft if arm == "swap" else state.raw
    estimate = model_mean.copy()
    for answers in schema.question_slices:
        n = counts[:, answers]
        rows = n.sum(axis=1) >= 1.0
        k = answers.stop - answers.start
        smoothed = (n[rows] + _JEFFREYS) / (n[rows].sum(axis=1, keepdims=True) + k * _JEFFREYS)
        estimate[np.ix_(rows, np.arange(answers.start, answers.stop))] = smoothed
    return estimate


def quality(estimate: np.ndarray, truth: np.ndarray, schema: Schema) -> dict[str, float]:
    """Whole-survey NLL and accuracy of the most likely answer, whole tree and smooth-or-featured.

    NLL: the expected negative log-likelihood of one perfect volunteer's walk (each question's
    cross-entropy weighted by P(asked) under the truth), averaged over galaxies. Accuracy: each
    question's argmax agreement, weighted by P(asked).
    """
    asked = schema.question_asked_probability(truth)
    log_estimate = np.log(np.maximum(estimate, _FLOOR))
    nll = np.zeros(asked.shape)
    right = np.zeros(asked.shape)
    for q, answers in enumerate(schema.question_slices):
        nll[:, q] = -(truth[:, answers] * log_estimate[:, answers]).sum(axis=1)
        right[:, q] = estimate[:, answers].argmax(axis=1) == truth[:, answers].argmax(axis=1)
    return {
        "nll_tree": float((asked * nll).sum(axis=1).mean()),
        "nll_smooth": float(nll[:, 0].mean()),
        "accuracy_tree": float(((asked * right).sum(axis=1) / asked.sum(axis=1)).mean()),
        "accuracy_smooth": float(right[:, 0].mean()),
    }


def _serve(priority: np.ndarray, available: np.ndarray, votes, cap: int, step: int, window: int):
    """Galaxy index of each click of one window: top priority first, ``step`` each, under cap."""
    order = np.flatnonzero(available)
    order = order[np.argsort(-priority[order], kind="stable")]
    allotment = np.minimum(step, cap - votes[order])
    filled = np.cumsum(allotment)
    last = np.searchsorted(filled, window)
    allotment = allotment[: last + 1].copy()
    if allotment.size and filled[min(last, filled.size - 1)] > window:
        allotment[-1] -= filled[last] - window
    return np.repeat(order[: allotment.size], allotment)


class ArmRun:
    """Runs one arm on one seed; ``run`` returns its quality curve."""

    def __init__(self, arm, survey: Survey, crowd: Crowd, protocol: Protocol, schema, seed):
        self.arm, self.survey, self.crowd, self.protocol = arm, survey, crowd, protocol
        self.schema, self.rng = schema, np.random.default_rng(seed)
        n, n_answers = survey.fractions.shape
        self.state = _State(n, n_answers)
        self.skill = SkillModel(schema, crowd.kind.size) if arm in _SKILL_ARMS else None
        self.rule = protocol.swap_rule if arm == "swap" else protocol.rule
        self.control = control_flags(n, self.rule.control_share, seed)
        self.model = EnsembleModel(schema, protocol.n_members, seed=seed)
        self.machine = np.zeros(n, dtype=bool)  # KaDE: retired by the model
        self.priority = self.rng.random(n)
        self.posterior: CombinedPosterior | None = None
        self.previous_skill: list[np.ndarray] | None = None
        self.pretrain_counts = survey.pretrain_counts
        if self.skill is not None and protocol.reweight_previous:
            self._learn_previous()

    def _previous_evidence(self, mode: str) -> np.ndarray:
        """Skill-weighted soft counts of the previous survey's votes (or a skill EM step)."""
        galaxy, volunteer, said = self.survey.pretrain_votes
        own = one_hot(said, self.schema)
        conc = self.survey.pretrain_counts + _JEFFREYS
        args = (galaxy, volunteer, said, conc[galaxy], own, self.schema)
        evidence = _evidence(self.skill, np.arange(galaxy.size), *args[1:], mode=mode)
        return _scatter(galaxy, evidence, conc.shape[0])

    def _learn_previous(self) -> None:
        """Skills from the previous survey's votes (EM), kept as a base for every later step."""
        for _ in range(3):
            self._previous_evidence("reestimate")
        self.previous_skill = [c.copy() for c in self.skill.counts]
        self.pretrain_counts = self._previous_evidence("evidence")

    def _retrain(self) -> None:
        s = self.state
        counts = s.soft if self.arm in _SKILL_ARMS else s.raw
        voted = np.flatnonzero(s.votes > 0)
        self.model.fit(
            np.vstack([self.survey.pretrain_features, self.survey.features[voted]]),
            np.vstack([self.pretrain_counts, counts[voted]]),
        )
        self.prior = self.model.concentrations(self.survey.features)
        self.model_mean = self.schema.vote_fractions(self.prior).mean(axis=1)
        if self.arm == "mi_40":
            self.priority = bald(self.prior, self.schema)
        if self.arm == "kade":
            smooth_or_featured = self.model_mean[:, :2].max(axis=1)
            self.machine |= ~s.retired & (smooth_or_featured > self.protocol.kade_threshold)

    def _refresh(self, rows: np.ndarray | None = None) -> None:
        """Recompute the posterior of ``rows`` (None: all) and retire those the rule says to.

        For ``combined``, the rows' priorities (next-click information) are refreshed too.
        """
        s = self.state
        rows = np.arange(s.n) if rows is None else rows
        if self.arm == "swap":
            prior = np.full((rows.size, 1, s.n_answers), _JEFFREYS)
        else:
            prior = self.prior[rows]
        part = combine(prior, s.soft[rows], self.schema)
        if self.posterior is None or rows.size == s.n:  # the first call refreshes every row
            self.posterior = part
        else:
            self.posterior.mean[rows] = part.mean
            self.posterior.total[rows] = part.total
            self.posterior.weights[rows] = part.weights
        if self.arm == "combined":
            self.priority[rows] = tree_next_vote_information(part, self.schema)
        reasons = retirement_reasons(
            part, s.votes[rows], self.control[rows], self.rule, self.schema
        )
        newly = ~s.retired[rows] & (reasons > 0)
        s.reason[rows[newly]] = reasons[newly]
        s.retired[rows[newly]] = True

    def _update_skill(self, full: bool) -> None:
        """Weigh the newest window's votes; on ``full`` syncs re-estimate skills from every vote."""
        s, schema = self.state, self.schema
        new = s.said[-1].shape[0]
        conc = self.posterior.concentrations(schema)
        own = np.zeros((new, s.n_answers))
        args = (s.galaxy[-1], s.volunteer[-1], s.said[-1], conc, own, schema)
        _evidence(self.skill, *args, mode="learn")
        s.evidence.append(_evidence(self.skill, *args, mode="evidence"))
        s.soft += _scatter(s.galaxy[-1], s.evidence[-1], s.n)
        if full:
            galaxy, volunteer, said = (np.concatenate(x) for x in (s.galaxy, s.volunteer, s.said))
            voted = np.flatnonzero(s.votes > 0)
            self._refresh(voted)
            conc = self.posterior.concentrations(schema)
            own = np.concatenate(s.evidence)
            args = (galaxy, volunteer, said, conc, own, schema)
            _evidence(self.skill, *args, mode="reestimate")
            if self.previous_skill is not None:
                for counts, previous in zip(self.skill.counts, self.previous_skill, strict=True):
                    counts += previous
            s.evidence = [_evidence(self.skill, *args, mode="evidence")]
            s.soft = _scatter(galaxy, s.evidence[0], s.n)

    def _window(self, clicks: int) -> None:
        s, p = self.state, self.protocol
        adaptive = self.arm in _SKILL_ARMS
        cap = self.rule.max_votes if adaptive else 40
        galaxy = _serve(
            self.priority, ~s.retired & ~self.machine, s.votes, cap, 1 if adaptive else 40, p.window
        )
        volunteer = self.rng.integers(self.crowd.kind.size, size=galaxy.size)
        said = crowd_classify(self.survey.fractions[galaxy], volunteer, self.crowd, self.rng)
        s.galaxy.append(galaxy)
        s.volunteer.append(volunteer)
        s.said.append(said)
        s.votes += np.bincount(galaxy, minlength=s.n)
        s.raw += _scatter(galaxy, one_hot(said, self.schema), s.n)
        if not adaptive:
            newly = ~s.retired & (s.votes >= 40)
            s.reason[newly] = REASONS.index("max_votes")
            s.retired |= newly
            return
        full = (clicks + p.window) % p.em_every == 0
        self._update_skill(full)
        self._refresh(np.flatnonzero(s.votes > 0) if full else np.unique(galaxy))

    def run(self) -> list[dict[str, float]]:
        """Quality every ``eval_every`` clicks, from 0 to the budget."""
        p, curve = self.protocol, []
        for clicks in range(0, p.budget + 1, p.window):
            if clicks % p.retrain_every == 0:
                self._retrain()
                if self.arm in _SKILL_ARMS:
                    self._refresh()
            if clicks % p.eval_every == 0:
                estimate = _estimate(
                    self.arm, self.state, self.model_mean, self.posterior, self.schema
                )
                point = quality(estimate, self.survey.fractions, self.schema)
                point.update(clicks=clicks, retired=int(self.state.retired.sum()))
                curve.append(point)
            if clicks < p.budget:
                self._window(clicks)
        return curve
