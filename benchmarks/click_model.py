"""The volunteer-click benchmark's model: a cheap stand-in for frozen-encoder features + heads.

Why a stand-in: rendering and encoding 10,000+ galaxies per run on a shared 2-core CPU costs more
than the whole ~20 minute budget, and this benchmark measures how votes are spent, not the
encoder. The stand-in keeps what matters to that: features that carry partial, noisy information
about each galaxy's answers, heads retrained on the votes collected, and a posterior with
epistemic spread.

- Features: per answer, the log of the simulator's *true* (not the crowd's) answer probability,
  centred within its question, plus Gaussian noise of ``noise`` sd. So the model can never learn a
  galaxy's own crowd scatter (Dirichlet(kappa p) in the simulator); votes are needed for that.
- Heads: per question, softmax regression on that question's features, L2-regularised,
  fitted by L-BFGS to vote fractions weighted by each question's votes; an
  ensemble of bootstrap members (Poisson(1) galaxy weights), warm-started at each retrain.
- Posterior: member e's Dirichlet concentrations are tau_q x its predicted fractions, with tau_q
  per question the maximum-likelihood Dirichlet-multinomial precision on the training votes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import gammaln, log_softmax

from zoobot.schemas import Schema

__all__ = ["EnsembleModel", "stand_in_features"]

_TAU_GRID = np.geomspace(2.0, 400.0, 24)
_FLOOR = 1e-4


def stand_in_features(
    true_probabilities: np.ndarray, noise: float, rng: np.random.Generator, schema: Schema
) -> np.ndarray:
    """[n, n_answers] centred log true probabilities plus N(0, noise^2) per entry."""
    logs = np.log(np.maximum(true_probabilities, _FLOOR))
    for answers in schema.question_slices:
        logs[:, answers] -= logs[:, answers].mean(axis=1, keepdims=True)
    return logs + noise * rng.standard_normal(logs.shape)


@dataclass
class EnsembleModel:
    """An ensemble of per-question softmax-regression heads.

    Question q's head sees that question's own answer features (and a bias), which is where the
    stand-in puts the information, so each head is a (K + 1) x K matrix fitted on its own.
    """

    schema: Schema
    n_members: int = 4
    l2: float = 1e-3
    max_iterations: int = 40
    seed: int = 0
    weights: list[list[np.ndarray]] = field(default_factory=list)
    tau: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.weights = [
            [
                np.zeros((s.stop - s.start + 1, s.stop - s.start))
                for s in self.schema.question_slices
            ]
            for _ in range(self.n_members)
        ]
        self.tau = np.full(len(self.schema.questions), 10.0)

    @staticmethod
    def _design(features: np.ndarray, answers: slice) -> np.ndarray:
        return np.hstack([features[:, answers], np.ones((features.shape[0], 1))])

    def _fit_head(self, x: np.ndarray, targets: np.ndarray, weight: np.ndarray, start: np.ndarray):
        """One question's head: weighted soft-label cross-entropy + L2, by L-BFGS."""
        shape, total = start.shape, weight.sum()

        def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
            w = flat.reshape(shape)
            log_p = log_softmax(x @ w, axis=1)
            value = (
                -(weight[:, None] * targets * log_p).sum() / total + self.l2 * (w[:-1] ** 2).sum()
            )
            grad = x.T @ (weight[:, None] * (np.exp(log_p) - targets)) / total
            grad[:-1] += 2 * self.l2 * w[:-1]
            return value, grad.ravel()

        options = {"maxiter": self.max_iterations}
        result = minimize(loss, start.ravel(), jac=True, method="L-BFGS-B", options=options)
        return result.x.reshape(shape)

    def fit(self, features: np.ndarray, counts: np.ndarray) -> None:
        """Retrain every member on (possibly fractional) vote counts [n, n_answers]."""
        rng = np.random.default_rng(self.seed)
        bootstrap = rng.poisson(1.0, size=(self.n_members, features.shape[0])).astype(float)
        for q, answers in enumerate(self.schema.question_slices):
            n = counts[:, answers].sum(axis=1)
            rows = n > 0
            if not rows.any():
                continue
            x = self._design(features[rows], answers)
            targets = counts[rows][:, answers] / n[rows, None]
            for m in range(self.n_members):
                weight = n[rows] * bootstrap[m, rows]
                if weight.sum() > 0:
                    self.weights[m][q] = self._fit_head(x, targets, weight, self.weights[m][q])
        self._fit_tau(self.predict_fractions(features).mean(axis=1), counts)

    def _fit_tau(self, fractions: np.ndarray, counts: np.ndarray) -> None:
        for q, answers in enumerate(self.schema.question_slices):
            n = counts[:, answers]
            keep = n.sum(axis=1) > 0
            n, p = n[keep], np.maximum(fractions[keep][:, answers], _FLOOR)
            if not keep.any():
                continue
            scores = []
            for tau in _TAU_GRID:
                a = tau * p
                scores.append(
                    (gammaln(tau) - gammaln(tau + n.sum(axis=1))).sum()
                    + (gammaln(a + n) - gammaln(a)).sum()
                )
            self.tau[q] = _TAU_GRID[int(np.argmax(scores))]

    def predict_fractions(self, features: np.ndarray) -> np.ndarray:
        """[n, n_members, n_answers] each member's predicted answer fractions."""
        out = np.empty((features.shape[0], self.n_members, len(self.schema.label_cols)))
        for q, answers in enumerate(self.schema.question_slices):
            x = self._design(features, answers)
            for m in range(self.n_members):
                out[:, m, answers] = np.exp(log_softmax(x @ self.weights[m][q], axis=1))
        return np.maximum(out, _FLOOR)

    def concentrations(self, features: np.ndarray) -> np.ndarray:
        """[n, n_members, n_answers] Dirichlet concentrations, tau_q x predicted fractions."""
        return self.predict_fractions(features) * self.tau[self.schema.question_index]
