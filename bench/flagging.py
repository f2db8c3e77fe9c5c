"""Rules that turn detector scores into flags, shared by detectors."""

from __future__ import annotations

import numpy as np


def mixture_flags(scores: np.ndarray, iterations: int = 200) -> np.ndarray:
    """Flag samples more likely to belong to the higher of two 1-D Gaussian components.

    EM for a two-component Gaussian mixture, started from the lower and upper
    quartiles; a sample is flagged when the posterior of the high-mean component
    exceeds 0.5. Deterministic; flags nothing when all scores are equal.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.size < 2 or np.ptp(x) == 0:
        return np.zeros(x.shape, dtype=bool)
    mu = np.quantile(x, [0.25, 0.75])
    floor = 1e-6 * np.var(x) + 1e-12
    var = np.full(2, np.var(x) / 4 + floor)
    weight = np.array([0.5, 0.5])
    for _ in range(iterations):
        log_p = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var) + np.log(weight)
        log_p -= log_p.max(1, keepdims=True)
        resp = np.exp(log_p)
        resp /= resp.sum(1, keepdims=True)
        nk = resp.sum(0) + 1e-12
        new_mu = (resp * x[:, None]).sum(0) / nk
        var = (resp * (x[:, None] - new_mu) ** 2).sum(0) / nk + floor
        weight = nk / nk.sum()
        if np.allclose(new_mu, mu, rtol=0, atol=1e-10):
            mu = new_mu
            break
        mu = new_mu
    high = int(np.argmax(mu))
    log_p = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var) + np.log(weight)
    return log_p[:, high] > log_p[:, 1 - high]
