"""How far a path's energy may still be above the minimum it is heading for.

Two estimates, and the larger is reported where a path did not converge:

- the *model* estimate: the decrease the solver's own quadratic model predicts along the
  path's latest direction, -g^T p / 2 (for the Gauss-Newton phase, half the Gauss-Newton
  decrement). It is what "converged" is tested on; for L-BFGS it is known to understate a
  slow path's gap by orders of magnitude (docs/solver-diagnosis.md);
- the *trend* estimate, from the energy history over doublings of the iteration count: with
  D1 = E(t/2) - E(t) and D0 = E(t/4) - E(t/2), a decrease that keeps shrinking by
  q = D1 / D0 per doubling leaves D1 q / (1 - q) to come (q capped at 0.9). On the demo
  models, where L-BFGS creeps like a power law, this is within a factor of about two of the
  true gap (bench/results/solver-optimum.json).
"""
from __future__ import annotations

import numpy as np

#: the largest shrink factor per doubling the trend estimate believes
MAX_SHRINK = 0.9
#: iterations before a trend estimate is made
MIN_ITERATIONS = 8


def trend(history, iterations):
    """The trend estimate (B,) from energy histories (B, >= T+1) after ``iterations`` (B,)
    accepted iterations; 0 where there are fewer than MIN_ITERATIONS."""
    t = np.asarray(iterations, dtype=np.int64)
    rows = np.arange(len(t))
    e_t, e_half, e_quarter = (history[rows, t // k] for k in (1, 2, 4))
    with np.errstate(divide="ignore", invalid="ignore"):  # a failed path's energies are inf
        d1 = np.maximum(e_half - e_t, 0.0)
        d0 = np.maximum(e_quarter - e_half, 0.0)
        q = np.where(d0 > 0, d1 / d0, 0.0)
    q = np.minimum(q, MAX_SHRINK)
    with np.errstate(invalid="ignore"):
        out = d1 * q / (1.0 - q)
    return np.where((t >= MIN_ITERATIONS) & np.isfinite(out), out, 0.0)


def estimate(history, iterations, model, converged):
    """The reported gap (B,): the model estimate where a path converged (its test held),
    else the larger of the model and trend estimates. NaN model estimates (no direction was
    formed) count as 0."""
    model = np.where(np.isfinite(model), model, 0.0)
    return np.where(converged, model, np.maximum(model, trend(history, iterations)))
