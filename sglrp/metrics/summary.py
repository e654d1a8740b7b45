"""Mean and seeded bootstrap 95 % interval of per-map values, undefined values counted apart."""

from __future__ import annotations

import numpy as np

__all__ = ["summarize"]


def summarize(values, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean and bootstrap 95 % interval (percentile method) of the defined values.

    Parameters
    ----------
    values : array_like
        Per-map values; NaN marks a map where the metric is undefined.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling: equal inputs give equal intervals.

    Returns
    -------
    dict
        ``mean`` and ``ci95`` (``[lo, hi]``) over the defined values (``None`` if there are
        none), ``n`` the number of defined values and ``n_undefined`` that of the NaNs.
    """
    values = np.asarray(values, np.float64).ravel()
    defined = values[np.isfinite(values)]
    out = {"mean": None, "ci95": None, "n": int(defined.size),
           "n_undefined": int(values.size - defined.size)}
    if defined.size:
        rng = np.random.default_rng(seed)
        means = defined[rng.integers(0, defined.size, (n_boot, defined.size))].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        out["mean"], out["ci95"] = float(defined.mean()), [float(lo), float(hi)]
    return out
